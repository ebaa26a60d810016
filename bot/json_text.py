"""JSON for everything the bot writes (replies, the audit trail, state files, log lines) and reads back.

orjson encodes an Adaptive Card reply 15-20 times faster than the json module. Options keep json's meaning:
int dict keys become strings, and datetimes and dataclasses go to `default` as json would send them. What
orjson refuses and json accepts (an integer beyond 64 bits, say, in a client's channelData) falls back to the
json module, so nothing that encoded before fails now; what neither can encode is a TypeError, as before.
Reading, orjson would turn such an integer into a float: text that may hold one is read by json."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_LONG_NUMBER = re.compile(rb"\d{19}")  # 2**63 has 19 digits: anything shorter is exact in orjson


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """Compact UTF-8 JSON, as json.dumps(separators=(",", ":"), ensure_ascii=False) writes it."""
    try:
        return orjson.dumps(value, default=default, option=_OPTIONS)
    except TypeError:
        return json.dumps(value, default=default, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def loads(raw: bytes) -> Any:
    """JSON text (UTF-8) to Python, every integer exact. Raises ValueError (orjson's JSONDecodeError is one)."""
    if _LONG_NUMBER.search(raw):
        try:
            return json.loads(raw.decode("utf-8"))
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
    return orjson.loads(raw)
