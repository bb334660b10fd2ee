"""MessagePack encoding of Shoal models, and strict decoding of whatever arrives."""

from __future__ import annotations

from typing import Any, TypeVar

import ormsgpack
from pydantic import ValidationError

from shoal.errors import BadPayload
from shoal.models.base import SCHEMA_VERSION, ShoalModel

M = TypeVar("M", bound=ShoalModel)


def encode(model: ShoalModel) -> bytes:
    return ormsgpack.packb(model.dump())


def encode_raw(value: Any) -> bytes:
    return ormsgpack.packb(value)


def decode(data: bytes, model: type[M], *, what: str = "payload") -> M:
    """Decode ``data`` into ``model`` or raise BadPayload saying what is wrong with it."""
    try:
        raw = ormsgpack.unpackb(data)
    except (ormsgpack.MsgpackDecodeError, ValueError, TypeError) as err:
        raise BadPayload(f"{what} is not MessagePack ({len(data)} bytes): {err}") from None
    if not isinstance(raw, dict):
        raise BadPayload(f"{what} must be a MessagePack map, got {type(raw).__name__}")
    schema = raw.get("schema", SCHEMA_VERSION)
    if isinstance(schema, int) and schema > SCHEMA_VERSION:
        raise BadPayload(f"{what} uses schema {schema}; this Shoal understands up to {SCHEMA_VERSION}")
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(root)"
        raise BadPayload(f"{what} is not a valid {model.__name__}: {where}: {first['msg']}") from None
