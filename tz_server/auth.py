"""Token authentication.

* Server token: every call must carry ``authorization: Bearer <token>`` (:class:`TokenAuth`).
  Health checks and reflection stay open (load balancers and grpcurl need them).
* Session tokens: a session created with its own token needs ``tz-session-token: <token>`` on
  every call that names it, on top of the server token (:func:`check_session_token`). The server
  keeps only the token's SHA-256 (also in checkpoints).
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import grpc

OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def _deny(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    kind = ("stream" if handler.request_streaming else "unary") + "_" + ("stream" if handler.response_streaming else "unary")
    make: Callable = getattr(grpc, f"{kind}_rpc_method_handler")
    return make(behaviour, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)


class TokenAuth(grpc.ServerInterceptor):
    """Rejects calls without the server's token with UNAUTHENTICATED."""

    def __init__(self, token: str):
        if not token:
            raise ValueError("empty token")
        self._expected = f"Bearer {token}".encode()

    def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None or details.method.startswith(OPEN_PREFIXES):
            return handler
        got = dict(details.invocation_metadata or ()).get("authorization", "")
        if isinstance(got, str):
            got = got.encode()
        if hmac.compare_digest(got, self._expected):
            return handler
        return _deny(handler, "missing or invalid token" if got else "this server needs a token (authorization: Bearer <token>)")


SESSION_TOKEN_KEY = "tz-session-token"
"""Call metadata carrying a session's own token."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_token_of(context: grpc.ServicerContext) -> str | None:
    """The session token the call carries (None if none)."""
    for k, v in context.invocation_metadata() or ():
        if k == SESSION_TOKEN_KEY:
            return v.decode() if isinstance(v, bytes) else v
    return None


def token_matches(token_hash: str | None, token: str | None) -> bool:
    """Whether ``token`` opens a session whose token hash is ``token_hash`` (None: no session token)."""
    if token_hash is None:
        return True
    if not token:
        return False
    return hmac.compare_digest(hash_token(token).encode(), token_hash.encode())
