"""Structured logs: one JSON object per line, ids rather than message text."""
from __future__ import annotations

import json
import logging
import sys
import time

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from bot import json_text

_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self):
        super().__init__()
        self._second: tuple[int, str] = (-1, "")  # the last whole second, formatted: most lines share one

    def _timestamp(self, created: float) -> str:
        """UTC, milliseconds: what logging's formatTime gives, without its strftime per record in local time."""
        seconds = int(created)
        if self._second[0] != seconds:
            self._second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
        return f"{self._second[1]}.{int((created - seconds) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self._timestamp(record.created), "level": record.levelname, "logger": record.name,
                 "event": record.getMessage()}
        for key, value in record.__dict__.items():  # the `extra=` of the call, in the order given
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        try:
            return json_text.dumps(entry, default=str).decode("utf-8")
        except ValueError:  # text UTF-8 cannot hold (a lone surrogate, say from a file name): escaped instead
            return json.dumps(entry, default=str)


SLOW_REQUEST = 1.0  # seconds


class AccessLogger(AbstractAccessLogger):
    """A line for each request that failed (status ≥ 400) or was slow: method, route, status, milliseconds.

    Not for every request: each message turn already logs its own line (dialogs.assistant: intent and
    conversation), and a second per turn cost ~5 % of the turn's CPU. The route, not the path: an export
    link's path is its secret token. No client address or user agent: only the Bot Connector calls."""

    def log(self, request: BaseRequest, response: StreamResponse, seconds: float) -> None:
        if response.status < 400 and seconds < SLOW_REQUEST:
            return
        match_info = getattr(request, "match_info", None)  # a web.Request's; a bare BaseRequest has none
        info = match_info.route.resource if match_info else None
        self.logger.info("request", extra={"method": request.method, "route": info.canonical if info else "-",
                                           "status": response.status, "ms": round(seconds * 1000, 2)})


def setup(level: str = "INFO") -> None:
    # The JSON lines hold none of these, so records need not collect them (logging's documented
    # optimisations): no caller lookup (a walk up the stack for every line), no thread or process names.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
