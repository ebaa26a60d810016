"""Sending due nudges through the Bot Connector, each at most once, with retries that respect the Connector.

The sweep runs inside `serve` every few minutes and as `python -m bot nudges`. Two sweeps at once (two
processes on one data dir) cannot double-send: a nudge is claimed under the store's cross-process lock
before it is sent and marked sent after; a failed delivery drops the claim so a later sweep retries it.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp
from botbuilder.core import MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import ConversationReference, TextFormatTypes

from bot.connector import ConnectorError
from dialogs.context import Services
from dialogs.nudges import Nudge, Planner, in_window, wave_signature

log = logging.getLogger(__name__)

GONE = (403, 404)  # the bot was removed from the conversation, or it no longer exists
ATTEMPTS = 4
MAX_RETRY_AFTER = 60.0  # seconds; a Connector asking for longer is retried on the next sweep
CLAIM_STALE = timedelta(minutes=10)  # a claim this old belonged to a sweep that died


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
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.services = services
        self.adapter = adapter
        self.app_id = app_id
        self.sleep = sleep
        self.planner = Planner(services.content, services.catalogs)
        self.owner = uuid.uuid4().hex  # this sweeper's name on its claims

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
        store = self.services.store
        for nudge in report.planned:
            stamp = now.isoformat()
            if not await store.claim_nudge(nudge.key, self.owner, stamp, (now - CLAIM_STALE).isoformat()):
                report.skipped.append(nudge.key)
                continue
            status = await self._deliver(nudge)
            await store.finish_nudge(nudge.key, self.owner, sent=status == "sent", at=stamp)
            {"sent": report.sent, "failed": report.failed, "gone": report.deactivated}[status].append(nudge.key)
            if status == "gone":
                await store.deactivate_conversation(nudge.conversation.key)
        for wave_id, signature in changed.items():
            wave_keys = [n.key for n in report.planned if n.wave == wave_id]
            if not any(k in report.failed for k in wave_keys):
                await store.set_wave_signature(wave_id, signature)
        log.info("nudge sweep", extra={"planned": len(report.planned), "sent": len(report.sent),
                                       "failed": len(report.failed), "deactivated": len(report.deactivated)})
        return report

    async def _deliver(self, nudge: Nudge) -> str:
        """"sent", "gone" (403/404: stop nudging there) or "failed" (retry on a later sweep)."""
        reference = ConversationReference().deserialize(nudge.conversation.reference)
        delay = 0.5
        for attempt in range(1, ATTEMPTS + 1):
            error = await self._send_once(reference, nudge.text)
            if error is None:
                return "sent"
            status = getattr(error, "status", None)
            if status in GONE:
                log.info("conversation gone", extra={"conversation": nudge.conversation.key, "status": status})
                return "gone"
            if attempt == ATTEMPTS:
                break
            if status == 429 and error.retry_after is not None:
                if error.retry_after > MAX_RETRY_AFTER:
                    break
                wait = error.retry_after
            else:
                wait, delay = delay, delay * 2
            await self.sleep(wait)
        log.warning("nudge not delivered", extra={"key": nudge.key, "error": type(error).__name__,
                                                   "status": getattr(error, "status", None)})
        return "failed"

    async def _send_once(self, reference: ConversationReference, text: str) -> Exception | None:
        failure: list[Exception] = []

        async def callback(turn_context: TurnContext) -> None:
            # Caught here: the adapter would otherwise hand the error to on_turn_error and we could not retry.
            try:
                message = MessageFactory.text(text)
                message.text_format = TextFormatTypes.markdown
                await turn_context.send_activity(message)
            except (ConnectorError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
                failure.append(exc)

        await self.adapter.continue_conversation(reference, callback, self.app_id)
        return failure[0] if failure else None
