"""The aiohttp application: POST /api/messages through botbuilder's CloudAdapter; GET /healthz (alive), /readyz
(ready for traffic) and /metrics (Prometheus)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import requests
from aiohttp import web
from botbuilder.core import MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botframework.connector.auth import AuthenticationConstants

from bot import exports, inbound, signing_keys, teams, token_shape, understanding_cache
from bot.adapter import AssistantAdapter
from bot.config import MULTITENANT_WARNING, Config
from bot.connector import ConnectorError, FastAuthentication
from bot.exports import SharedExportShelf
from bot.handler import AssistantBot
from bot.metrics import CONTENT_TYPE, Metrics
from bot.nudges import NudgeSender
from content import load_content
from content.catalogs import Catalogs
from content.loader import CONTENT_ROOT
from dialogs.assistant import Assistant, new_incident
from dialogs.context import Services

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 1.0
SWEEP_SHUTDOWN_GRACE = 30.0  # seconds
MAX_BODY = 256 * 1024  # a Teams activity is a few kB; anything near this is not one
SERVICES = web.AppKey("services", Services)
BOT = web.AppKey("bot", AssistantBot)
ADAPTER = web.AppKey("adapter", CloudAdapter)
NUDGES = web.AppKey("nudges", NudgeSender)
CONFIG = web.AppKey("config", Config)
METRICS = web.AppKey("metrics", Metrics)
READY = web.AppKey("ready", dict)  # "draining": True once shutdown began
KEYS = web.AppKey("keys", signing_keys.SigningKeys)  # the channel's signing keys (when authentication is on)


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_services(config: Config, content_root: Path = CONTENT_ROOT) -> Services:
    """Load and validate content, catalogs and the store; any problem stops start-up with file and field."""
    content = load_content(content_root)
    return Services(content=content, catalogs=Catalogs(), store=config.open_store(),
                    understander=understanding_cache.understander(content, content_root, config.cache_dir))


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
    adapter, metrics = request.app[ADAPTER], request.app[METRICS]
    header = request.headers.get("Authorization", "")
    if request.app[CONFIG].auth_enabled:
        reason = token_shape.refusal(header)
        if reason is not None:  # judged without any network: no key lookup for a token that cannot be one
            metrics.auth_failures.labels(reason).inc()
            log.info("unauthorized", extra={"activity_id": activity.id, "reason": reason})
            return _bad_request(401, "unauthorized")
    started = time.perf_counter()
    try:
        # Authenticate first and on our terms: botbuilder rejects bad tokens with a zoo of exception
        # types (PyJWT errors, AttributeError for an unknown key, bare Exception for endorsements).
        auth = await adapter.bot_framework_authentication.authenticate_request(activity, header)
    except (signing_keys.KeysUnavailable, requests.RequestException):
        metrics.auth_failures.labels("keys_unavailable").inc()
        log.warning("signing keys unavailable", extra={"activity_id": activity.id})
        return _bad_request(503, "authentication keys unavailable")
    except Exception as exc:  # every other failure is a request we must not run
        metrics.auth_failures.labels("invalid").inc()
        log.info("unauthorized", extra={"activity_id": activity.id, "reason": type(exc).__name__})
        return _bad_request(401, "unauthorized")
    response = await adapter.process_activity(auth, activity, request.app[BOT].on_turn)
    metrics.turn_seconds.observe(time.perf_counter() - started)
    if response:
        return web.json_response(data=response.body, status=response.status)
    return web.Response(status=201)


async def healthz(request: web.Request) -> web.Response:
    """Alive: the process answers. Nothing else is checked (a platform restarts what fails this)."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready for traffic: content loaded, the store writable (data dir or database), the signing keys fetched (or not needed), and
    not shutting down. 503 with the reasons otherwise (a load balancer sends the traffic elsewhere)."""
    app = request.app
    problems = []
    if app[READY]["draining"]:
        problems.append("shutting down")
    if not app[SERVICES].content.tasks:
        problems.append("content not loaded")
    if not await app[SERVICES].store.writable():
        problems.append("database not writable" if app[CONFIG].database_url else "data dir not writable")
    if KEYS in app and not app[KEYS].cached:
        app[KEYS].ensure()  # try again in the background: readiness must not wait for a user's message
        problems.append("signing keys not fetched")
    if problems:
        return web.json_response({"status": "not ready", "problems": problems}, status=503)
    return web.json_response({"status": "ready"})


async def metrics_page(request: web.Request) -> web.Response:
    body = await asyncio.to_thread(request.app[METRICS].text)  # built off the loop: a scrape never delays a turn
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def _turn_error_handler(catalogs: Catalogs) -> Callable:
    async def on_turn_error(turn_context: TurnContext, error: Exception) -> None:
        """A fault outside the dialogs (which answer their own): logged with an incident id, and the person told
        with that id, unless the fault is that replies cannot be delivered at all."""
        incident = new_incident()
        log.error("turn failed", extra={"activity_id": turn_context.activity.id, "error": type(error).__name__,
                                        "incident": incident}, exc_info=error)
        if isinstance(error, ConnectorError) or turn_context.activity.type != "message" or turn_context.responded:
            return  # replies cannot be delivered, or there is no one to tell, or the answer already went out
        lang = "en" if (turn_context.activity.locale or "da").lower().startswith("en") else "da"
        try:
            await turn_context.send_activity(MessageFactory.text(catalogs.text(lang, "turn.failed", incident=incident)))
        except Exception as exc:  # the apology itself could not go out: the log has the incident
            log.warning("apology not delivered", extra={"incident": incident, "error": type(exc).__name__})
    return on_turn_error


def make_app(config: Config, clock: Callable[[], datetime] = utc_now, services: Services | None = None) -> web.Application:
    config.check()
    if config.app_id and config.app_type_name == "MultiTenant":
        log.warning(MULTITENANT_WARNING)
    services = services or build_services(config)
    metrics = Metrics()
    keys = signing_keys.install()  # botbuilder's token checks, with keys fetched off the event loop
    keys.on_fetch = lambda ok: metrics.key_fetches.labels("ok" if ok else "failed").inc()
    authentication = FastAuthentication(ConfigurationBotFrameworkAuthentication(config.botbuilder_settings()))
    authentication.on_retry = lambda reason: metrics.connector_retries.labels(reason).inc()
    services.store.on_write = metrics.store_write_seconds.observe
    adapter = AssistantAdapter(authentication)
    adapter.on_turn_error = _turn_error_handler(services.catalogs)
    app = web.Application(client_max_size=MAX_BODY)
    app[SERVICES] = services
    app[CONFIG] = config
    app[METRICS] = metrics
    app[READY] = {"draining": False}
    if config.auth_enabled:
        app[KEYS] = keys(config.openid_metadata_url or AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPEN_ID_METADATA_URL)
    shelf = SharedExportShelf(services.store)  # the store keeps them: with PostgreSQL, any instance serves the link
    app[BOT] = AssistantBot(Assistant(services, config.allowed_tenants, config.consultants), clock,
                            shelf=shelf, download_base=config.download_base, metrics=metrics)
    app[ADAPTER] = adapter
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/exports/{token}", exports.route(shelf))

    async def draining(_: web.Application) -> None:  # SIGTERM: stop saying "ready" while in-flight turns finish
        app[READY]["draining"] = True
    app.on_shutdown.append(draining)

    sender = NudgeSender(services, adapter, config.app_id)
    sender.metrics = metrics
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
        if KEYS in app:  # the first request then finds the keys there, and /readyz can say so
            tasks.append(asyncio.create_task(app[KEYS].prefetch()))
        if config.nudge_interval_minutes > 0:
            tasks.append(asyncio.create_task(nudge_loop()))
        yield
        try:
            # A sweep cut off between a delivery and its "sent" mark would send that nudge again later: let a
            # running one finish (bounded: its retries stop at the sweep's deadline).
            await asyncio.wait_for(sweeping.acquire(), SWEEP_SHUTDOWN_GRACE)
        except TimeoutError:
            log.warning("nudge sweep still running at shutdown; its unfinished nudges are retried later")
        try:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await services.store.checkpoint()
        finally:
            await services.store.aclose()
            services.store.close()
            await authentication.close()

    app.cleanup_ctx.append(background)
    return app
