"""The in-bench Bot Connector: answers what a bot POSTs to /v3/conversations/{id}/activities[/{aid}].

It runs in the bench process, on the same event loop as the load generator, so the generator can check
after each request that its reply really arrived (every variant sends the reply before it answers the
POST, so a missing entry here is a lost reply, not a late one). It costs every variant the same.

For the nudge bench it can also keep every POST as (conversation id, text) — `keep_sends`, off for the
load runs, whose replies are popped instead — and it counts the TCP connections it accepts, so the bench
can tell one keep-alive session from a connection per message.
"""
from __future__ import annotations

from aiohttp import web


def reply_texts(body: dict) -> list[str]:
    """The activity's text, then each Adaptive Card's fallbackText (its text twin): what the reply says."""
    texts = [body.get("text") or ""]
    for attachment in body.get("attachments") or []:
        content = attachment.get("content") if isinstance(attachment, dict) else None
        if isinstance(content, dict) and isinstance(content.get("fallbackText"), str):
            texts.append(content["fallbackText"])
    return texts


class Connector:
    def __init__(self):
        self.replies: dict[str, list[str]] = {}  # replyToId -> reply_texts(), popped by the load generator
        self.received = 0
        self.keep_sends = False
        self.sends: list[tuple[str, str]] = []  # (conversation id, text) of every POST while keep_sends is on
        self.connections = 0  # TCP connections accepted since start() or reset_counts()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received += 1
        if self.keep_sends:
            self.sends.append((request.match_info["conversation"], body.get("text") or ""))
        # botbuilder and the baseline both reply to /activities/{replyToId}; fall back to the body's field.
        reply_to = request.match_info.get("activity") or body.get("replyToId") or ""
        self.replies[reply_to] = reply_texts(body)
        return web.json_response({"id": f"reply-{self.received}"})

    async def _put(self, request: web.Request) -> web.Response:
        await request.read()  # a card redrawn in place (button presses; not in the mix, but never a 405)
        return web.json_response({"id": request.match_info["activity"]})

    async def start(self) -> None:
        # access_log=None: a log line per reply would cost the bench process, which shares the 2 cores.
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation}/activities", self._post)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._post)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._put)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self._count_connections(self._runner.server)
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/"

    def _count_connections(self, server: web.Server) -> None:
        # aiohttp's low-level Server hears of every accepted connection (RequestHandler.connection_made
        # calls it), before any request is parsed: the one place that sees a connection exactly once.
        registered = server.connection_made

        def connection_made(handler, transport) -> None:
            self.connections += 1
            registered(handler, transport)

        server.connection_made = connection_made

    def reset_counts(self) -> None:
        self.sends.clear()
        self.connections = 0

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
