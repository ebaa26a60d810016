"""Turning a request body into an Activity, or a 4xx that says why. Nothing here runs a turn."""
from __future__ import annotations

import json
import re

from botbuilder.schema import Activity

# A JSON escape for a UTF-16 surrogate; only a pre-filter, the real check re-encodes the parsed strings.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_HTTP_URL = re.compile(r"^https?://[^\s/]+", re.IGNORECASE)


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
    try:
        return Activity().deserialize(body)
    except (Exception, RecursionError):  # msrest raises a family of errors for wrong-typed fields
        raise BadActivity(400, "body is not a Bot Framework activity") from None
