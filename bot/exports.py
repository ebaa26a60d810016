"""Files the bot offers for download (the consultants' CSV export): kept in memory briefly behind an
unguessable link. Teams opens the link in the browser, which saves the file."""
from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from datetime import timedelta

from aiohttp import web

TTL_SECONDS = 15 * 60
KEEP = 20  # at most this many exports in memory; the oldest go first


class ExportShelf:
    def __init__(self, clock=time.monotonic):
        self._items: OrderedDict[str, tuple[float, str, bytes]] = OrderedDict()
        self._clock = clock

    def keep(self, token: str, name: str, data: bytes, ttl: float = TTL_SECONDS) -> None:
        self._items[token] = (self._clock() + ttl, name, data)
        while len(self._items) > KEEP:
            self._items.popitem(last=False)

    def find(self, token: str) -> tuple[str, bytes] | None:
        item = self._items.get(token)
        if item is None or item[0] < self._clock():
            self._items.pop(token, None)
            return None
        return item[1], item[2]


class SharedExportShelf:
    """Exports kept by the store: in memory beside a data dir (one process), in the database with PostgreSQL,
    where the link Teams opens may reach another instance than the one that made the export."""

    def __init__(self, store):
        self._store = store

    async def put(self, name: str, data: bytes) -> str:
        token = secrets.token_urlsafe(24)
        await self._store.put_export(token, name, data, timedelta(seconds=TTL_SECONDS))
        return token

    async def get(self, token: str) -> tuple[str, bytes] | None:
        return await self._store.get_export(token)


def route(shelf: SharedExportShelf):
    async def download(request: web.Request) -> web.Response:
        found = await shelf.get(request.match_info["token"])
        if found is None:
            return web.json_response({"error": "this export link has expired or never existed"}, status=404)
        name, data = found
        return web.Response(body=data, content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}"',
                                     "Cache-Control": "no-store"})
    return download
