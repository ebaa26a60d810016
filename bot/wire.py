"""Bot Framework models to JSON, like msrest's Model.serialize() but a few times cheaper.

msrest validates and converts every field through a generic type system on every reply (~1 ms a turn);
the schema models only need their attribute map walked. tests/e2e/test_wire.py checks the output equals
msrest's for the activities the bot sends.

`to_json` is what goes on the wire: the encoder (bot/json_text.py) walks the plain parts (an Adaptive Card
is hundreds of dicts) and calls back only for models and datetimes, so nothing is walked twice in Python."""
from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum

from msrest.serialization import Model

from bot import json_text


def _fields(model: Model) -> dict:
    """A model's set fields by their JSON names, values not yet converted."""
    out = {}
    for attr, spec in type(model)._attribute_map.items():
        item = getattr(model, attr, None)
        if item is not None:
            out[spec["key"]] = item
    extra = getattr(model, "additional_properties", None)  # e.g. a mention Entity's "mentioned", "text"
    if extra:
        for key, item in extra.items():
            out.setdefault(key, item)
    return out


def _scalar(value: object) -> object:
    if isinstance(value, datetime):  # msrest's iso-8601 form: UTC, milliseconds, "Z"
        moment = value.astimezone(UTC) if value.tzinfo else value
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if isinstance(value, Enum):
        return value.value
    return value


def to_wire(value: object) -> object:
    """Plain JSON data (dicts, lists, strings, numbers), e.g. to store a conversation reference."""
    if isinstance(value, Model):
        return {key: to_wire(item) for key, item in _fields(value).items()}
    if isinstance(value, list):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    return _scalar(value)


def _encode_default(value: object) -> object:
    if isinstance(value, Model):
        return _fields(value)
    converted = _scalar(value)
    if converted is value:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    return converted


def to_json(value: object) -> bytes:
    """The UTF-8 JSON of `value`; equal, once parsed, to `to_wire(value)`."""
    return json_text.dumps(value, default=_encode_default)
