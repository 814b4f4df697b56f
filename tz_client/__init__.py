"""Client side of the torchzero service: generated stubs, codecs, :class:`Client`, :class:`Study`,
:class:`RemoteOptimizer`. Imports without ``tz_server`` (and without Ray)."""
from .client import Client
from .errors import (Aborted, AlreadyExists, InvalidArgument, NotFound, ServiceError, StudyFinished, Unauthenticated,
                     Unavailable)
from .remote import RemoteOptimizer
from .sessions import SessionInfo
from .study import Study, Trial

__all__ = ["Client", "Study", "Trial", "RemoteOptimizer", "SessionInfo", "ServiceError", "InvalidArgument", "NotFound",
           "AlreadyExists", "Unauthenticated", "Unavailable", "Aborted", "StudyFinished"]
