"""The aiohttp application: POST /api/messages through botbuilder's CloudAdapter, GET /healthz."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import requests
from aiohttp import web
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication

from bot import exports, inbound, teams
from bot.adapter import AssistantAdapter
from bot.exports import ExportShelf
from bot.config import Config
from bot.connector import FastAuthentication
from bot.handler import AssistantBot
from bot.nudges import NudgeSender
from bot.store import TinyStore
from content import load_content
from content.loader import CONTENT_ROOT
from content.catalogs import Catalogs
from dialogs.assistant import Assistant
from dialogs.context import Services
from dialogs.understanding import Understander

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 1.0
SWEEP_SHUTDOWN_GRACE = 30.0  # seconds
MAX_BODY = 256 * 1024  # a Teams activity is a few kB; anything near this is not one
SERVICES = web.AppKey("services", Services)
BOT = web.AppKey("bot", AssistantBot)
ADAPTER = web.AppKey("adapter", CloudAdapter)
NUDGES = web.AppKey("nudges", NudgeSender)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def build_services(config: Config, content_root: Path = CONTENT_ROOT) -> Services:
    """Load and validate content, catalogs and the store; any problem stops start-up with file and field."""
    content = load_content(content_root)
    return Services(content=content, catalogs=Catalogs(), store=TinyStore(config.data_dir),
                    understander=Understander.of(content))


def _bad_request(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def messages(request: web.Request) -> web.Response:
    if request.content_type != "application/json":
        return _bad_request(415, "Content-Type must be application/json")
    try:
        activity = inbound.parse(await request.read())
    except inbound.BadActivity as bad:
        return _bad_request(bad.status, str(bad))
    teams.copy_tenant_to_conversation(activity)
    adapter = request.app[ADAPTER]
    try:
        # Authenticate first and on our terms: botbuilder rejects bad tokens with a zoo of exception
        # types (PyJWT errors, IndexError for an unknown key, bare Exception for endorsements).
        auth = await adapter.bot_framework_authentication.authenticate_request(
            activity, request.headers.get("Authorization", ""))
    except requests.RequestException:
        log.warning("authentication metadata unreachable", extra={"activity_id": activity.id})
        return _bad_request(503, "authentication metadata unreachable")
    except Exception as exc:  # every other failure is a request we must not run
        log.info("unauthorized", extra={"activity_id": activity.id, "reason": type(exc).__name__})
        return _bad_request(401, "unauthorized")
    response = await adapter.process_activity(auth, activity, request.app[BOT].on_turn)
    if response:
        return web.json_response(data=response.body, status=response.status)
    return web.Response(status=201)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _on_turn_error(turn_context: TurnContext, error: Exception) -> None:
    """A failed turn (usually the reply could not be delivered) is logged; state was written before."""
    log.error("turn failed", extra={"activity_id": turn_context.activity.id, "error": type(error).__name__},
              exc_info=error)


def make_app(config: Config, clock: Callable[[], datetime] = utc_now, services: Services | None = None) -> web.Application:
    config.check()
    services = services or build_services(config)
    authentication = FastAuthentication(ConfigurationBotFrameworkAuthentication(config.botbuilder_settings()))
    adapter = AssistantAdapter(authentication)
    adapter.on_turn_error = _on_turn_error
    app = web.Application(client_max_size=MAX_BODY)
    app[SERVICES] = services
    shelf = ExportShelf()
    app[BOT] = AssistantBot(Assistant(services, config.allowed_tenants, config.consultants), clock,
                            shelf=shelf, download_base=config.download_base)
    app[ADAPTER] = adapter
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/exports/{token}", exports.route(shelf))

    sender = NudgeSender(services, adapter, config.app_id)
    app[NUDGES] = sender

    sweeping = asyncio.Lock()

    async def nudge_loop():
        """Sweeps for due nudges while the server runs; a failed sweep is logged and tried next time."""
        while True:
            await asyncio.sleep(config.nudge_interval_minutes * 60)
            async with sweeping:
                try:
                    await sender.sweep(clock())
                except Exception:
                    log.exception("nudge sweep failed")

    async def checkpoint_loop():
        """Marks are written to the audit trail at once and to their municipality's file here, at most a
        second later: one file write for however many marks came in that second."""
        while True:
            await asyncio.sleep(CHECKPOINT_SECONDS)
            try:
                await services.store.checkpoint()
            except Exception:  # the trail has every change; the next checkpoint (or start-up) writes the files
                log.exception("checkpoint failed")

    async def background(_: web.Application):
        tasks = [asyncio.create_task(checkpoint_loop())]
        if config.nudge_interval_minutes > 0:
            tasks.append(asyncio.create_task(nudge_loop()))
        yield
        try:
            # A sweep cut off between a delivery and its "sent" mark would send that nudge again later: let a
            # running one finish (bounded: its retries stop at the sweep's deadline).
            await asyncio.wait_for(sweeping.acquire(), SWEEP_SHUTDOWN_GRACE)
        except asyncio.TimeoutError:
            log.warning("nudge sweep still running at shutdown; its unfinished nudges are retried later")
        try:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await services.store.checkpoint()
        finally:
            services.store.close()
            await authentication.close()

    app.cleanup_ctx.append(background)
    return app
