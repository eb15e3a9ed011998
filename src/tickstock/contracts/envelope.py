"""The one envelope every message travels in, and its wire format.

    {"v": 1, "id": "…", "type": "job.progress", "ts": "2025-01-02T21:05:00.123Z",
     "source": "worker-host-123", "correlation_id": "…", "data": {…}}

``encode`` gives compact UTF-8 JSON; ``decode`` parses it back into a typed envelope or raises
ContractError whose message says precisely what is wrong (the reason stored with a dead letter).
"""

from __future__ import annotations

import builtins
import functools
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, TypeVar, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    create_model,
    model_validator,
)

from tickstock.contracts.common import Identifier, Payload, UtcDatetime
from tickstock.contracts.registry import MESSAGE_TYPES, model_for
from tickstock.core.errors import ContractError
from tickstock.core.ids import new_id

#: The contract version this build speaks. Bump it when a change is not backward compatible.
CONTRACT_VERSION: Final = 1
SUPPORTED_VERSIONS: Final = frozenset({1})
#: Bound of an encoded message. Bars, ids and progress are small; a bigger body is a bug or an
#: attack, and Redis must not hold it in every consumer's pending list.
MAX_MESSAGE_BYTES: Final = 256 * 1024
_SOURCE_MAX: Final = 256
_TIME: TypeAdapter[UtcDatetime] = TypeAdapter(UtcDatetime)

ENVELOPE_FIELDS: Final = ("v", "id", "type", "ts", "source", "correlation_id", "data")

P = TypeVar("P", bound=Payload)


class Envelope(BaseModel):
    """One message: version, id, type, time, producer, correlation id and typed payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: int = CONTRACT_VERSION
    id: Identifier = Field(default_factory=new_id)
    type: str
    ts: UtcDatetime
    source: str = Field(min_length=1, max_length=_SOURCE_MAX,
                        description="Producing process instance.")
    correlation_id: Identifier | None = Field(
        default=None, description="The job or run this message belongs to.")
    data: Annotated[
        SerializeAsAny[Payload],
        WithJsonSchema({"type": "object", "description": "Payload of the model registered for "
                        "`type`; see that message's schema."}),
    ]

    def __eq__(self, other: object) -> bool:
        # Decoded envelopes are instances of a per-type subclass (see _typed_envelope); they
        # equal the Envelope they were encoded from.
        if not isinstance(other, Envelope):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in ENVELOPE_FIELDS)

    def __hash__(self) -> int:
        return hash((self.id, self.type))

    @model_validator(mode="after")
    def _data_matches_type(self) -> Envelope:
        if type(self.data) is not model_for(self.type):
            raise ValueError(f"data is a {type(self.data).__name__}, type {self.type!r} needs "
                             f"{model_for(self.type).__name__}")
        return self

    @classmethod
    def create(cls, data: Payload, *, source: str, correlation_id: str | None = None,
               ts: datetime | None = None, id: str | None = None) -> Envelope:
        """Wrap ``data`` for sending; ``type`` comes from the payload model."""
        return cls(
            id=id or new_id(),
            type=data.message_type,
            ts=ts if ts is not None else datetime.now(UTC),
            source=source,
            correlation_id=correlation_id,
            data=data,
        )

    def payload(self, model: builtins.type[P]) -> P:
        """The payload as ``model``; ContractError if it is another type."""
        if not isinstance(self.data, model):
            raise ContractError(f"message {self.id} is {self.type!r}, not {model.message_type!r}")
        return self.data

    def encode(self) -> bytes:
        """Compact UTF-8 JSON; ContractError if it exceeds MAX_MESSAGE_BYTES."""
        raw = self.model_dump_json().encode()
        if len(raw) > MAX_MESSAGE_BYTES:
            raise ContractError(f"message {self.type} {self.id} is too large: {len(raw)} bytes "
                                f"> {MAX_MESSAGE_BYTES}")
        return raw

    @staticmethod
    def encode_payloads(payloads: Iterable[tuple[str, bytes]], *, source: str,
                        ts: datetime) -> list[bytes]:
        """The messages ``create(...).encode()`` would write for each (message type, payload
        JSON) -- one time and source, no correlation id, ids ``<one new id>.<n>`` -- without
        building an envelope model a message: a publisher's hot path. ContractError names a
        bad ``source`` or an oversized message."""
        if not 0 < len(source) <= _SOURCE_MAX:  # the ``source`` field's bound
            raise ContractError(f"source must be 1-{_SOURCE_MAX} characters, got {source!r}")
        batch = new_id()
        head = f'{{"v":{CONTRACT_VERSION},"id":"{batch}.'.encode()
        # the time is checked (aware) and written by the envelope's own field type, once
        shared = (b'","ts":' + _TIME.dump_json(_TIME.validate_python(ts)) + b',"source":'
                  + json.dumps(source).encode() + b',"correlation_id":null,"data":')
        raws: list[bytes] = []
        for message_type, payload in payloads:
            n = len(raws)
            raw = b"".join((head, str(n).encode(), b'","type":"', message_type.encode(), shared,
                            payload, b"}"))
            if len(raw) > MAX_MESSAGE_BYTES:
                raise ContractError(f"message {message_type} {batch}.{n} is too large: "
                                    f"{len(raw)} bytes > {MAX_MESSAGE_BYTES}")
            raws.append(raw)
        return raws

    @classmethod
    def decode(cls, raw: bytes | str) -> Envelope:
        """Parse and validate one message; ContractError with the precise reason otherwise."""
        return decode(raw)


def decode(raw: bytes | str) -> Envelope:
    """Parse and validate one message; ContractError with the precise reason otherwise.

    Validation is strict JSON: "12" is not an int, 1 is not a bool, 12.5 is not a time.
    """
    if isinstance(raw, str):
        raw = raw.encode()
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ContractError(f"too large: {len(raw)} bytes > {MAX_MESSAGE_BYTES}")
    try:  # the fast path: valid messages are validated in one pass
        return _all_envelopes().validate_json(raw, strict=True)
    except ValidationError:
        pass  # find the precise reason below
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ContractError(f"not a JSON object but {type(obj).__name__}")
    model = _check_shape(obj)
    try:
        return _typed_envelope(model).model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise ContractError(_reason(exc)) from None


@functools.cache
def _typed_envelope(model: builtins.type[Payload]) -> builtins.type[Envelope]:
    """The envelope of one message type: ``type`` fixed, ``data`` typed as ``model``."""
    fields: dict[str, Any] = {
        "v": (Literal[CONTRACT_VERSION], ...),
        "id": (Identifier, ...),
        "type": (Literal[model.message_type], ...),
        "data": (model, ...),
    }
    typed: builtins.type[Envelope] = create_model(
        f"Envelope_{model.__name__}", __base__=Envelope, **fields)
    return typed


@functools.cache
def _all_envelopes() -> TypeAdapter[Envelope]:
    """Every typed envelope, discriminated by ``type``: one pass of pydantic-core per message."""
    members: Any = tuple(_typed_envelope(m) for m in MESSAGE_TYPES.values())
    union: Any = Annotated[Union[members], Field(discriminator="type")]  # noqa: UP007
    adapter: TypeAdapter[Envelope] = TypeAdapter(union)
    return adapter


def _check_shape(obj: dict[str, Any]) -> builtins.type[Payload]:
    """Cheap checks with the most useful reasons first; the payload model of the message."""
    # The version first: a message of another version may legitimately have other fields.
    if "v" not in obj:
        raise ContractError("missing field 'v'")
    version = obj["v"]
    if type(version) is not int:
        raise ContractError(f"wrong type of field 'v': {type(version).__name__}, expected int")
    if version not in SUPPORTED_VERSIONS:
        raise ContractError(f"unknown contract version {version} (this build speaks "
                            f"{sorted(SUPPORTED_VERSIONS)})")
    missing = [f for f in ENVELOPE_FIELDS if f not in obj and f != "correlation_id"]
    if missing:
        raise ContractError(f"missing field {missing[0]!r}")
    unknown = sorted(set(obj) - set(ENVELOPE_FIELDS))
    if unknown:
        raise ContractError(f"unknown field {unknown[0]!r}")
    message_type = obj["type"]
    if not isinstance(message_type, str):
        raise ContractError(f"wrong type of field 'type': {type(message_type).__name__}, "
                            "expected str")
    model = model_for(message_type)
    if not isinstance(obj["data"], dict):
        raise ContractError(f"wrong type of field 'data': {type(obj['data']).__name__}, "
                            "expected object")
    return model


def _reason(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) if err["loc"] else "data"
    kind = {"missing": "missing field", "extra_forbidden": "unknown field"}.get(
        err["type"], "invalid field")
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    if err["type"] in ("missing", "extra_forbidden"):
        return f"{kind} {where!r}{more}"
    return f"{kind} {where!r}: {err['msg']}{more}"
