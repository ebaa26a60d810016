"""Sending due nudges through the Bot Connector, each at most once, with retries that respect the Connector.

The sweep runs inside `serve` every few minutes and as `python -m bot nudges`. Two sweeps at once (two
processes on one data dir) cannot double-send: a nudge is claimed under the store's cross-process lock
before it is sent and marked sent after; a failed delivery drops the claim so a later sweep retries it.

Delivery is concurrent across conversations (at most CONCURRENCY at a time, over the adapter's one
keep-alive session) because a sweep can hold hundreds of nudges and each is a round trip to the Connector:
one at a time, 294 nudges at 100 ms each would take half a minute. Within a conversation nudges go one
after another, in plan order, so a chat reads them in order and never gets two at once.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
from botbuilder.core import MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import ConversationReference, TextFormatTypes

from bot.connector import ConnectorError
from bot.metrics import Metrics
from dialogs.context import Services
from dialogs.nudges import Nudge, Planner, in_window, wave_signature

log = logging.getLogger(__name__)

GONE = (403, 404)  # the bot was removed from the conversation, or it no longer exists
ATTEMPTS = 4
MAX_RETRY_AFTER = 60.0  # seconds; a Connector asking for longer is retried on the next sweep
CLAIM_STALE = timedelta(minutes=10)  # a claim this old belonged to a sweep that died
# Seconds one sweep may spend waiting between retries, all nudges together (retries go one at a time). It keeps
# every claim of a living sweep well younger than CLAIM_STALE, so no other sweep takes one over and sends it
# twice, and bounds how long a stopping server waits for its sweep; what is left over goes in the next sweep.
RETRY_BUDGET = 240.0
CONCURRENCY = 8  # conversations delivered to at once; well under the session's connection limit (100)


@dataclass
class SweepReport:
    window_open: bool = True
    planned: list[Nudge] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # claimed by another sweep, or already sent
    deactivated: list[str] = field(default_factory=list)


class NudgeSender:
    def __init__(self, services: Services, adapter: CloudAdapter, app_id: str,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, concurrency: int = CONCURRENCY):
        self.services = services
        self.adapter = adapter
        self.app_id = app_id
        self.sleep = sleep
        self.concurrency = concurrency
        self.planner = Planner(services.content, services.catalogs)
        self.owner = uuid.uuid4().hex  # this sweeper's name on its claims
        self.metrics: Metrics | None = None  # set by the app: claimed, sent, gone, failed
        self._retry_left = RETRY_BUDGET

    def count(self, state: str) -> None:
        if self.metrics is not None:
            self.metrics.nudges.labels(state).inc()

    async def _due(self, now: datetime) -> tuple[list[Nudge], dict[str, str]]:
        store, content = self.services.store, self.services.content
        conversations = await store.conversations()
        states = {code: await store.municipality(code) for code in {c.code for c in conversations}}
        conversations = [c for c in conversations if await self._still_theirs(c, states[c.code])]
        changed: dict[str, str] = {}
        for wave in content.project.waves:
            signature, seen = wave_signature(wave), await store.wave_signature(wave.id)
            if seen is None:
                await store.set_wave_signature(wave.id, signature)  # first sight: the baseline, nothing changed
            elif seen != signature:
                changed[wave.id] = signature
        return self.planner.plan(now, states, conversations, await store.sent_nudges(), changed), changed

    async def _still_theirs(self, record, state) -> bool:
        """A conversation hears about a municipality only while its tenant owns it (no rebind since) and its
        scope is still registered to it (the team did not move on to another municipality)."""
        tenant = (record.reference.get("conversation") or {}).get("tenantId")
        if not state.tenant_id or tenant != state.tenant_id:
            return False
        if record.scope:
            registration = await self.services.store.registration(record.scope)
            if registration is not None:
                return registration.code == record.code
            # A personal chat uses its tenant's only municipality without registering (see dialogs.context).
            return await self.services.store.codes_for_tenant(tenant) == [record.code]
        return True

    async def sweep(self, now: datetime, dry_run: bool = False) -> SweepReport:
        report = SweepReport(window_open=in_window(self.services.content.project.nudges.window, now))
        if not report.window_open:
            return report  # quiet hours: what is due stays due and goes out at the next opening
        report.planned, changed = await self._due(now)
        if dry_run:
            return report
        outcomes = await self._send_all(report.planned, now)
        lists = {"sent": report.sent, "failed": report.failed, "gone": report.deactivated, "skipped": report.skipped}
        for nudge in report.planned:  # in plan order, whatever order the deliveries finished in
            lists[outcomes[nudge.key]].append(nudge.key)
        store = self.services.store
        for wave_id, signature in changed.items():
            wave_keys = [n.key for n in report.planned if n.wave == wave_id]
            if not any(k in report.failed for k in wave_keys):
                await store.set_wave_signature(wave_id, signature)
        log.info("nudge sweep", extra={"planned": len(report.planned), "sent": len(report.sent),
                                       "failed": len(report.failed), "deactivated": len(report.deactivated)})
        return report

    async def _send_all(self, planned: list[Nudge], now: datetime) -> dict[str, str]:
        """Nudge key -> "sent", "failed", "gone" or "skipped". Conversations in parallel, at most
        `concurrency` at a time; each conversation's nudges one after another, in plan order."""
        by_conversation: dict[str, list[Nudge]] = {}
        for nudge in planned:
            by_conversation.setdefault(nudge.conversation.key, []).append(nudge)
        slots = asyncio.Semaphore(self.concurrency)
        # Retries go one nudge at a time: a Connector that throttles (429) or struggles (5xx) must not get
        # a retry storm from every slot at once, and each nudge's waits stay in its own order.
        retrying = asyncio.Lock()
        self._retry_left = RETRY_BUDGET
        outcomes: dict[str, str] = {}

        async def one_conversation(nudges: list[Nudge]) -> None:
            async with slots:
                # Deserialised once per conversation, not per nudge: msrest's deserialiser is not cheap.
                reference = ConversationReference().deserialize(nudges[0].conversation.reference)
                for nudge in nudges:
                    outcomes[nudge.key] = await self._claim_and_deliver(nudge, reference, now, retrying)

        results = await asyncio.gather(*(one_conversation(n) for n in by_conversation.values()),
                                       return_exceptions=True)
        # An unexpected error surfaces only after every other conversation has finished, so no delivery is
        # abandoned between its send and its "sent" mark (which would send it again after CLAIM_STALE).
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return outcomes

    async def _claim_and_deliver(self, nudge: Nudge, reference: ConversationReference, now: datetime,
                                 retrying: asyncio.Lock) -> str:
        store = self.services.store
        # Claims are compared as text: in UTC always, whichever zone the sweep was asked in (`nudges --at` is
        # Copenhagen time), or a live claim could look stale to another sweep.
        utc = now.astimezone(UTC)
        stamp = utc.isoformat()
        if not await store.claim_nudge(nudge.key, self.owner, stamp, (utc - CLAIM_STALE).isoformat()):
            return "skipped"  # claimed by another sweep, or already sent
        self.count("claimed")
        status = await self._deliver(nudge, reference, retrying)
        self.count(status)  # sent, gone (the conversation no longer exists) or failed (retried by a later sweep)
        await store.finish_nudge(nudge.key, self.owner, sent=status == "sent", at=stamp)
        if status == "gone":
            await store.deactivate_conversation(nudge.conversation.key)
        return status

    async def _deliver(self, nudge: Nudge, reference: ConversationReference, retrying: asyncio.Lock) -> str:
        """"sent", "gone" (403/404: stop nudging there) or "failed" (retry on a later sweep)."""
        error = await self._send_once(reference, nudge.text)
        if error is not None and _status(error) not in GONE:
            async with retrying:
                error = await self._retry(reference, nudge.text, error)
        if error is None:
            return "sent"
        if _status(error) in GONE:
            log.info("conversation gone", extra={"conversation": nudge.conversation.key, "status": _status(error)})
            return "gone"
        log.warning("nudge not delivered", extra={"key": nudge.key, "error": type(error).__name__,
                                                   "status": _status(error)})
        return "failed"

    async def _retry(self, reference: ConversationReference, text: str, error: Exception) -> Exception | None:
        """Attempts 2..ATTEMPTS after a failed first one: after the Connector's Retry-After on a 429 (one
        longer than MAX_RETRY_AFTER is left to the next sweep), else after 0.5 s, 1 s, 2 s. None: sent."""
        delay = 0.5
        for _ in range(ATTEMPTS - 1):
            if _status(error) in GONE:
                break
            retry_after = getattr(error, "retry_after", None) if _status(error) == 429 else None
            if retry_after is not None:
                if retry_after > MAX_RETRY_AFTER:
                    break
                wait = retry_after
            else:
                wait, delay = delay, delay * 2
            if wait > self._retry_left:
                break  # the sweep's retry budget is spent: the next sweep tries again
            self._retry_left -= wait
            await self.sleep(wait)
            again = await self._send_once(reference, text)
            if again is None:
                return None
            error = again
        return error

    async def _send_once(self, reference: ConversationReference, text: str) -> Exception | None:
        failure: list[Exception] = []

        async def callback(turn_context: TurnContext) -> None:
            # Caught here: the adapter would otherwise hand the error to on_turn_error and we could not retry.
            try:
                message = MessageFactory.text(text)
                message.text_format = TextFormatTypes.markdown
                await turn_context.send_activity(message)
            except (TimeoutError, ConnectorError, aiohttp.ClientError) as exc:
                failure.append(exc)

        await self.adapter.continue_conversation(reference, callback, self.app_id)
        return failure[0] if failure else None


def _status(error: Exception) -> int | None:
    """The Connector's HTTP status; None for a network error or a timeout."""
    return getattr(error, "status", None)
