from tz_client._proto.torchzero_service.v1 import spec_pb2 as _spec_pb2
from tz_client._proto.torchzero_service.v1 import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SessionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_KIND_UNSPECIFIED: _ClassVar[SessionKind]
    STUDY: _ClassVar[SessionKind]
    OPTIMIZER: _ClassVar[SessionKind]

class StepMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_MODE_UNSPECIFIED: _ClassVar[StepMode]
    PUSH: _ClassVar[StepMode]
    CLOSURE: _ClassVar[StepMode]
SESSION_KIND_UNSPECIFIED: SessionKind
STUDY: SessionKind
OPTIMIZER: SessionKind
STEP_MODE_UNSPECIFIED: StepMode
PUSH: StepMode
CLOSURE: StepMode

class SessionRef(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ParamGroup(_message.Message):
    __slots__ = ("params", "options")
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    params: _containers.RepeatedScalarFieldContainer[int]
    options: _spec_pb2.ValueMap
    def __init__(self, params: _Optional[_Iterable[int]] = ..., options: _Optional[_Union[_spec_pb2.ValueMap, _Mapping]] = ...) -> None: ...

class Bound(_message.Message):
    __slots__ = ("scalar", "tensors")
    SCALAR_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    scalar: float
    tensors: TensorList
    def __init__(self, scalar: _Optional[float] = ..., tensors: _Optional[_Union[TensorList, _Mapping]] = ...) -> None: ...

class TensorList(_message.Message):
    __slots__ = ("tensors",)
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    tensors: _containers.RepeatedCompositeFieldContainer[_tensor_pb2.Tensor]
    def __init__(self, tensors: _Optional[_Iterable[_Union[_tensor_pb2.Tensor, _Mapping]]] = ...) -> None: ...

class CreateHeader(_message.Message):
    __slots__ = ("name", "kind", "modules", "params", "groups", "lower", "upper", "seed", "exist_ok", "workers", "device", "ask_timeout", "allow_nonfinite", "user_attrs", "session_token", "sync_timeout", "pipelined")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    EXIST_OK_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    ASK_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    ALLOW_NONFINITE_FIELD_NUMBER: _ClassVar[int]
    USER_ATTRS_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SYNC_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    PIPELINED_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: SessionKind
    modules: _containers.RepeatedCompositeFieldContainer[_spec_pb2.ModuleSpec]
    params: _tensor_pb2.Layout
    groups: _containers.RepeatedCompositeFieldContainer[ParamGroup]
    lower: Bound
    upper: Bound
    seed: int
    exist_ok: bool
    workers: int
    device: str
    ask_timeout: float
    allow_nonfinite: bool
    user_attrs: _spec_pb2.ValueMap
    session_token: str
    sync_timeout: float
    pipelined: bool
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[SessionKind, str]] = ..., modules: _Optional[_Iterable[_Union[_spec_pb2.ModuleSpec, _Mapping]]] = ..., params: _Optional[_Union[_tensor_pb2.Layout, _Mapping]] = ..., groups: _Optional[_Iterable[_Union[ParamGroup, _Mapping]]] = ..., lower: _Optional[_Union[Bound, _Mapping]] = ..., upper: _Optional[_Union[Bound, _Mapping]] = ..., seed: _Optional[int] = ..., exist_ok: _Optional[bool] = ..., workers: _Optional[int] = ..., device: _Optional[str] = ..., ask_timeout: _Optional[float] = ..., allow_nonfinite: _Optional[bool] = ..., user_attrs: _Optional[_Union[_spec_pb2.ValueMap, _Mapping]] = ..., session_token: _Optional[str] = ..., sync_timeout: _Optional[float] = ..., pipelined: _Optional[bool] = ...) -> None: ...

class CreateRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: CreateHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[CreateHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class SessionInfo(_message.Message):
    __slots__ = ("name", "kind", "params", "modules", "step", "evaluations", "device", "workers", "created", "state", "best_loss", "groups", "user_attrs", "allow_nonfinite", "protected", "sync_timeout", "pipelined", "persist_error")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    BEST_LOSS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    USER_ATTRS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_NONFINITE_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_FIELD_NUMBER: _ClassVar[int]
    SYNC_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    PIPELINED_FIELD_NUMBER: _ClassVar[int]
    PERSIST_ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: SessionKind
    params: _tensor_pb2.Layout
    modules: _containers.RepeatedCompositeFieldContainer[_spec_pb2.ModuleSpec]
    step: int
    evaluations: int
    device: str
    workers: int
    created: bool
    state: str
    best_loss: float
    groups: _containers.RepeatedCompositeFieldContainer[ParamGroup]
    user_attrs: _spec_pb2.ValueMap
    allow_nonfinite: bool
    protected: bool
    sync_timeout: float
    pipelined: bool
    persist_error: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[SessionKind, str]] = ..., params: _Optional[_Union[_tensor_pb2.Layout, _Mapping]] = ..., modules: _Optional[_Iterable[_Union[_spec_pb2.ModuleSpec, _Mapping]]] = ..., step: _Optional[int] = ..., evaluations: _Optional[int] = ..., device: _Optional[str] = ..., workers: _Optional[int] = ..., created: _Optional[bool] = ..., state: _Optional[str] = ..., best_loss: _Optional[float] = ..., groups: _Optional[_Iterable[_Union[ParamGroup, _Mapping]]] = ..., user_attrs: _Optional[_Union[_spec_pb2.ValueMap, _Mapping]] = ..., allow_nonfinite: _Optional[bool] = ..., protected: _Optional[bool] = ..., sync_timeout: _Optional[float] = ..., pipelined: _Optional[bool] = ..., persist_error: _Optional[str] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListReply(_message.Message):
    __slots__ = ("sessions",)
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[SessionInfo]
    def __init__(self, sessions: _Optional[_Iterable[_Union[SessionInfo, _Mapping]]] = ...) -> None: ...

class DeleteReply(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: _Optional[bool] = ...) -> None: ...

class AskRequest(_message.Message):
    __slots__ = ("session", "client_id", "n", "wait", "resume", "spare")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    SPARE_FIELD_NUMBER: _ClassVar[int]
    session: str
    client_id: str
    n: int
    wait: float
    resume: bool
    spare: int
    def __init__(self, session: _Optional[str] = ..., client_id: _Optional[str] = ..., n: _Optional[int] = ..., wait: _Optional[float] = ..., resume: _Optional[bool] = ..., spare: _Optional[int] = ...) -> None: ...

class Trial(_message.Message):
    __slots__ = ("id", "params", "needs_grad")
    ID_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    NEEDS_GRAD_FIELD_NUMBER: _ClassVar[int]
    id: str
    params: _containers.RepeatedCompositeFieldContainer[_tensor_pb2.Tensor]
    needs_grad: bool
    def __init__(self, id: _Optional[str] = ..., params: _Optional[_Iterable[_Union[_tensor_pb2.Tensor, _Mapping]]] = ..., needs_grad: _Optional[bool] = ...) -> None: ...

class AskReply(_message.Message):
    __slots__ = ("trials", "step", "finished")
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    trials: _containers.RepeatedCompositeFieldContainer[Trial]
    step: int
    finished: bool
    def __init__(self, trials: _Optional[_Iterable[_Union[Trial, _Mapping]]] = ..., step: _Optional[int] = ..., finished: _Optional[bool] = ...) -> None: ...

class TellItem(_message.Message):
    __slots__ = ("id", "loss", "grads")
    ID_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    GRADS_FIELD_NUMBER: _ClassVar[int]
    id: str
    loss: _tensor_pb2.Loss
    grads: _containers.RepeatedCompositeFieldContainer[_tensor_pb2.Tensor]
    def __init__(self, id: _Optional[str] = ..., loss: _Optional[_Union[_tensor_pb2.Loss, _Mapping]] = ..., grads: _Optional[_Iterable[_Union[_tensor_pb2.Tensor, _Mapping]]] = ...) -> None: ...

class TellRequest(_message.Message):
    __slots__ = ("session", "client_id", "items", "then_ask", "release")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    THEN_ASK_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    session: str
    client_id: str
    items: _containers.RepeatedCompositeFieldContainer[TellItem]
    then_ask: AskRequest
    release: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, session: _Optional[str] = ..., client_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[TellItem, _Mapping]]] = ..., then_ask: _Optional[_Union[AskRequest, _Mapping]] = ..., release: _Optional[_Iterable[str]] = ...) -> None: ...

class TellReply(_message.Message):
    __slots__ = ("accepted", "ignored", "asked", "released")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    IGNORED_FIELD_NUMBER: _ClassVar[int]
    ASKED_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    ignored: int
    asked: AskReply
    released: int
    def __init__(self, accepted: _Optional[int] = ..., ignored: _Optional[int] = ..., asked: _Optional[_Union[AskReply, _Mapping]] = ..., released: _Optional[int] = ...) -> None: ...

class BestReply(_message.Message):
    __slots__ = ("found", "loss", "params", "trial_id", "evaluations")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    TRIAL_ID_FIELD_NUMBER: _ClassVar[int]
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    found: bool
    loss: _tensor_pb2.Loss
    params: _containers.RepeatedCompositeFieldContainer[_tensor_pb2.Tensor]
    trial_id: str
    evaluations: int
    def __init__(self, found: _Optional[bool] = ..., loss: _Optional[_Union[_tensor_pb2.Loss, _Mapping]] = ..., params: _Optional[_Iterable[_Union[_tensor_pb2.Tensor, _Mapping]]] = ..., trial_id: _Optional[str] = ..., evaluations: _Optional[int] = ...) -> None: ...

class StepStart(_message.Message):
    __slots__ = ("session", "step", "rank", "mode", "grads", "loss", "groups", "frozen")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    GRADS_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FIELD_NUMBER: _ClassVar[int]
    session: str
    step: int
    rank: int
    mode: StepMode
    grads: _tensor_pb2.Layout
    loss: _tensor_pb2.Loss
    groups: _containers.RepeatedCompositeFieldContainer[ParamGroup]
    frozen: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, session: _Optional[str] = ..., step: _Optional[int] = ..., rank: _Optional[int] = ..., mode: _Optional[_Union[StepMode, str]] = ..., grads: _Optional[_Union[_tensor_pb2.Layout, _Mapping]] = ..., loss: _Optional[_Union[_tensor_pb2.Loss, _Mapping]] = ..., groups: _Optional[_Iterable[_Union[ParamGroup, _Mapping]]] = ..., frozen: _Optional[_Iterable[int]] = ...) -> None: ...

class EvalResult(_message.Message):
    __slots__ = ("index", "loss", "grads")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    GRADS_FIELD_NUMBER: _ClassVar[int]
    index: int
    loss: _tensor_pb2.Loss
    grads: _tensor_pb2.Layout
    def __init__(self, index: _Optional[int] = ..., loss: _Optional[_Union[_tensor_pb2.Loss, _Mapping]] = ..., grads: _Optional[_Union[_tensor_pb2.Layout, _Mapping]] = ...) -> None: ...

class StepRequest(_message.Message):
    __slots__ = ("start", "result", "chunk")
    START_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    start: StepStart
    result: EvalResult
    chunk: bytes
    def __init__(self, start: _Optional[_Union[StepStart, _Mapping]] = ..., result: _Optional[_Union[EvalResult, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class EvalCall(_message.Message):
    __slots__ = ("index", "backward", "at_current", "point")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    BACKWARD_FIELD_NUMBER: _ClassVar[int]
    AT_CURRENT_FIELD_NUMBER: _ClassVar[int]
    POINT_FIELD_NUMBER: _ClassVar[int]
    index: int
    backward: bool
    at_current: bool
    point: _tensor_pb2.Layout
    def __init__(self, index: _Optional[int] = ..., backward: _Optional[bool] = ..., at_current: _Optional[bool] = ..., point: _Optional[_Union[_tensor_pb2.Layout, _Mapping]] = ...) -> None: ...

class StepDone(_message.Message):
    __slots__ = ("step", "loss", "params", "replayed")
    STEP_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    step: int
    loss: _tensor_pb2.Loss
    params: _tensor_pb2.Layout
    replayed: bool
    def __init__(self, step: _Optional[int] = ..., loss: _Optional[_Union[_tensor_pb2.Loss, _Mapping]] = ..., params: _Optional[_Union[_tensor_pb2.Layout, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class StepReply(_message.Message):
    __slots__ = ("call", "done", "chunk")
    CALL_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    call: EvalCall
    done: StepDone
    chunk: bytes
    def __init__(self, call: _Optional[_Union[EvalCall, _Mapping]] = ..., done: _Optional[_Union[StepDone, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...
