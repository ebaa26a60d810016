"""The floor: a bare aiohttp server that does the least any bot must do per activity.

It parses the activity JSON, builds a reply and POSTs it to the Connector over one reused ClientSession,
then answers 201. No Bot Framework, no authentication, no storage: the bot's CPU per activity divided
by this one's is its overhead factor. Run as `python -m bench.bare_server PORT`.
"""
from __future__ import annotations

import sys
from urllib.parse import quote

import aiohttp
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)


async def messages(request: web.Request) -> web.Response:
    activity = await request.json()
    conversation = activity["conversation"]
    reply = {
        "type": "message",
        "text": f"Echo: {activity.get('text', '')}",
        "from": activity.get("recipient"),
        "recipient": activity.get("from"),
        "conversation": conversation,
        "replyToId": activity["id"],
    }
    url = (activity["serviceUrl"].rstrip("/") + f"/v3/conversations/{quote(conversation['id'], safe='')}"
           f"/activities/{quote(activity['id'], safe='')}")
    async with request.app[SESSION].post(url, json=reply) as response:
        await response.read()
    return web.Response(status=201)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _session(app: web.Application):
    app[SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    yield
    await app[SESSION].close()


def main() -> None:
    app = web.Application()
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    app.cleanup_ctx.append(_session)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)


if __name__ == "__main__":
    main()
