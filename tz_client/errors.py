"""Client-side errors: gRPC status codes as Python exceptions."""
from __future__ import annotations

import grpc


class ServiceError(Exception):
    """A call failed; ``code`` is the gRPC status code, ``details`` the server's message."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class InvalidArgument(ServiceError, ValueError):
    pass


class NotFound(ServiceError, KeyError):
    def __str__(self) -> str:  # KeyError would add quotes
        return ServiceError.__str__(self)


class AlreadyExists(ServiceError):
    pass


class Unauthenticated(ServiceError, PermissionError):
    pass


class Unavailable(ServiceError, ConnectionError):
    pass


class Aborted(ServiceError):
    """The server gave up on the call (e.g. a data-parallel step whose other workers never pushed);
    nothing was applied, so it may be retried."""


class StudyFinished(Exception):
    """The study's optimizer terminated: there are no more trials."""


_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.ABORTED: Aborted,
}


def from_rpc_error(e: grpc.RpcError) -> ServiceError:
    code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
    details = e.details() if hasattr(e, "details") else str(e)
    return _BY_CODE.get(code, ServiceError)(code, details or "")
