"""JSON for everything the bot writes (replies, the audit trail, state files, log lines) and reads back.

orjson encodes an Adaptive Card reply 15-20 times faster than the json module. Options keep json's meaning:
int dict keys become strings, and datetimes and dataclasses go to `default` as json would send them. What
orjson refuses and json accepts (an integer beyond 64 bits, say, in a client's channelData) falls back to the
json module, so nothing that encoded before fails now; what neither can encode is a TypeError, as before.
Two differences remain, both towards standard JSON: NaN and infinities are written as null (json wrote the
non-standard NaN), and a float may be spelled differently (1e-7, not 1e-07).

Reading, orjson would turn an integer beyond 64 bits into a float, and refuses what json accepts and wrote
before (NaN, Infinity): such text is read by json, so every file an earlier version wrote still reads."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_LONG_NUMBER = re.compile(rb"\d{19}")  # 2**63 has 19 digits: anything shorter is exact in orjson


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """Compact UTF-8 JSON: json.dumps(separators=(",", ":"), ensure_ascii=False), but for NaN (see above)."""
    try:
        return orjson.dumps(value, default=default, option=_OPTIONS)
    except TypeError:
        return json.dumps(value, default=default, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def loads(raw: bytes) -> Any:
    """JSON text (UTF-8) to Python, every integer exact, whatever json read before. Raises ValueError."""
    if not _LONG_NUMBER.search(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # json decides: it reads NaN and Infinity, and says what is wrong otherwise
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
