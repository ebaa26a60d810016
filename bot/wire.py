"""Bot Framework models to JSON, like msrest's Model.serialize() but a few times cheaper.

msrest validates and converts every field through a generic type system on every reply (~1 ms a turn);
the schema models only need their attribute map walked. tests/e2e/test_wire.py checks the output equals
msrest's for the activities the bot sends."""
from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum

from msrest.serialization import Model


def to_wire(value: object) -> object:
    if isinstance(value, Model):
        out = {}
        for attr, spec in type(value)._attribute_map.items():
            item = getattr(value, attr, None)
            if item is not None:
                out[spec["key"]] = to_wire(item)
        extra = getattr(value, "additional_properties", None)  # e.g. a mention Entity's "mentioned", "text"
        if extra:
            for key, item in extra.items():
                out.setdefault(key, to_wire(item))
        return out
    if isinstance(value, list):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, datetime):  # msrest's iso-8601 form: UTC, milliseconds, "Z"
        moment = value.astimezone(timezone.utc) if value.tzinfo else value
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if isinstance(value, Enum):
        return value.value
    return value
