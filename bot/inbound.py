"""Turning a request body into an Activity, or a 4xx that says why. Nothing here runs a turn.

The Activity is the one msrest's `Activity().deserialize(body)` gives, but built by bot/activity_fast.py
whenever that module can promise the same result (every ordinary Teams activity): msrest's deserialiser
costs 0.1-0.2 ms CPU per activity, the fast path a few microseconds. Bodies it is not certain about
(wrong-typed fields, unusual timestamp spellings, unmapped types, deep nesting) go to msrest as before,
so the result and every 400 stay msrest's.
"""
from __future__ import annotations

import json
import logging
import re

from botbuilder.schema import Activity

from bot import activity_fast

log = logging.getLogger(__name__)

# A JSON escape for a UTF-16 surrogate; only a pre-filter, the real check re-encodes the parsed strings.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_HTTP_URL = re.compile(r"^https?://[^\s/]+", re.IGNORECASE)
# msrest deep-copies 'object' fields (value, channelData) recursively, so a deeply nested one hits the
# recursion limit there (a 400) while the fast path would keep it as parsed. A body with at most this many
# opening brackets cannot nest anywhere near that limit; a Teams message has about 10, a card press 15.
_FAST_PATH_MAX_BRACKETS = 100


class BadActivity(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _has_lone_surrogate(body: object) -> bool:
    """Walks without recursion: a body nested 900 deep is valid JSON and must not become a RecursionError."""
    stack = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def parse(raw: bytes) -> Activity:
    try:
        # Strict UTF-8 (json.loads(bytes) would let encoded surrogates through), and a depth bomb is
        # a RecursionError, not a server error.
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadActivity(400, "body is not valid JSON in UTF-8") from None
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(body):
        raise BadActivity(400, "body contains text that is not valid Unicode")
    if not isinstance(body, dict) or not isinstance(body.get("type"), str) or not body["type"]:
        raise BadActivity(400, "body is not a Bot Framework activity (no type)")
    # Every activity the bot may answer must say where the answer goes; msrest would turn 5 into "5".
    conversation = body.get("conversation")
    if not isinstance(conversation, dict) or not isinstance(conversation.get("id"), str) or not conversation["id"]:
        raise BadActivity(400, "activity has no conversation.id")
    service_url = body.get("serviceUrl")
    if not isinstance(service_url, str) or not _HTTP_URL.match(service_url):
        raise BadActivity(400, "activity has no http(s) serviceUrl")
    return _activity(raw, body)


def _activity(raw: bytes, body: dict) -> Activity:
    """msrest's Activity for a body that passed the checks above: from the fast path when it is certain of
    it, from msrest otherwise; a 400 wherever msrest fails."""
    if raw.count(b"{") + raw.count(b"[") <= _FAST_PATH_MAX_BRACKETS:
        try:
            return activity_fast.activity_from_dict(body)
        except activity_fast.NotCertain:
            pass
        except Exception as exc:  # a fast-path bug must cost speed, not a 500: msrest decides this body
            log.warning("fast activity parse failed, msrest used", extra={"error": type(exc).__name__})
    try:
        return Activity().deserialize(body)
    except (Exception, RecursionError):  # msrest raises a family of errors for wrong-typed fields
        raise BadActivity(400, "body is not a Bot Framework activity") from None
