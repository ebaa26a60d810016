"""bot/json_text.py writes and reads the bot's JSON with orjson, and must mean what the json module meant:
every file an earlier version wrote reads back the same, and nothing json could write fails now."""
from __future__ import annotations

import json
import logging
import math

import pytest

from bot import json_text
from bot.logs import JsonFormatter


def test_integers_beyond_64_bits_are_written_and_read_back_exactly():
    for value in ({"big": 10**30, "small": 7}, {"n": -(2**63), "m": 2**64 - 1, "x": [1.5, "12345678901234567890"]}):
        back = json_text.loads(json_text.dumps(value))
        assert back == value
        assert all(type(v) is type(value[k]) for k, v in back.items())


def test_what_json_wrote_before_still_reads():
    """json wrote NaN and Infinity (a client may send them, and a stored conversation reference keeps them)."""
    back = json_text.loads(json.dumps({"extra": float("nan"), "up": float("inf"), "name": "Århus"}).encode("utf-8"))
    assert math.isnan(back["extra"]) and back["up"] == float("inf") and back["name"] == "Århus"


def test_bad_text_is_a_value_error():
    for raw in (b'{"a": ', b"\xff", b'{"n": 12345678901234567890123' + b"[" * 100_000, b"[" * 100_000):
        with pytest.raises(ValueError):
            json_text.loads(raw)


def test_written_as_json_wrote_it():
    value = {"tekst": "«Udpeg projektejer» – udført ✅", "n": [1, 2.5, None, True], 3: "int key"}
    assert json_text.dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    with pytest.raises(TypeError):
        json_text.dumps({"x": object()})


def test_a_log_line_with_text_utf8_cannot_hold_is_still_written():
    record = logging.LogRecord("bot.store", logging.ERROR, __file__, 1, "checkpoint failed", None, None)
    record.path = "/data/\udcff.json"  # a file name with a byte that is not UTF-8 (surrogateescape)
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "checkpoint failed" and line["path"] == "/data/\udcff.json"
