"""The conversation core's entry point: one message in, one reply out. No Bot Framework in here.

A message is understood (dialogs/understanding), its references resolved ("den", "næste fase"), its
missing slots asked for, an unsure change asked about (dialogs/confirm.py), and then answered by the
intent's dialog, as content/intents.yaml binds it (dialogs/intents.py).
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable
from dataclasses import replace

from content import ContentError
from dialogs import confirm, events, help, presses, references
from dialogs.context import Ctx, Services
from dialogs.intents import bind
from dialogs.store import StoreUnavailable
from dialogs.turn import Reply, TurnInput
from dialogs.understanding import Understanding

log = logging.getLogger(__name__)


def new_incident() -> str:
    """A short id for one failure, said to the user and logged with the trace."""
    return uuid.uuid4().hex[:10]


class Assistant:
    def __init__(self, services: Services, allowed_tenants: frozenset[str] = frozenset(),
                 consultants: frozenset[str] = frozenset()):
        self.services = services
        self.allowed_tenants = allowed_tenants  # empty: every tenant
        self.consultants = consultants  # AAD object ids of KOMBIT's consultants
        self.intents = services.content.intents
        self.handlers = bind(self.intents)  # checked here, at start-up
        missing = events.missing_history_strings(services.catalogs.has)
        if missing:  # every kind of change history shows needs its line in both catalogs
            raise ContentError(f"content/locale/*/LC_MESSAGES/messages.po: missing msgid '{missing[0]}' "
                               "(dialogs/events.py: a kind of change history shows)")

    def _tenant_allowed(self, turn: TurnInput) -> bool:
        return not self.allowed_tenants or (turn.conversation.tenant_id or "").lower() in self.allowed_tenants

    def _consultant(self, turn: TurnInput) -> bool:
        return bool(turn.user.id) and turn.user.id.lower() in self.consultants

    async def _context(self, turn: TurnInput, written_in: str | None = None) -> Ctx:
        """The answer's language: the user's choice ("svar på engelsk"), else the message's own language when
        it is clear, else the Teams client's locale."""
        preferred = await self.services.store.language(turn.user.id) if turn.user.id else None
        locale = (turn.locale or "da").lower()
        lang = preferred or written_in or ("da" if locale.startswith("da") else "en")
        ctx = Ctx(self.services, turn, lang, consultant=self._consultant(turn))
        ctx.dispatch = lambda u: self.dispatch(ctx, u)
        return ctx

    async def on_message(self, turn: TurnInput) -> Reply:
        if presses.is_press(turn.value):
            ctx = await self._context(turn)
            if not self._tenant_allowed(turn):
                return Reply(ctx.t("tenant.not_allowed"))
            log.info("press", extra={"action": str(turn.value.get("a"))[:20], "conversation": turn.conversation.id})
            reply = await self._answer(ctx, presses.handle(ctx, turn.value))
            reply = replace(reply, intent=reply.intent or "press")
        else:
            understanding = self.services.understander.understand(
                turn.text, frozenset(person.name for person in turn.mentions), self._consultant(turn))
            ctx = await self._context(turn, understanding.language)
            if not self._tenant_allowed(turn):
                return Reply(ctx.t("tenant.not_allowed"))
            # The log says what was understood and why (template, or the classifier's strongest features:
            # words of the examples, never the message's own text).
            log.info("turn", extra={"intent": understanding.intent, "confirm": understanding.confirm,
                                    "why": understanding.why[:300], "conversation": turn.conversation.id})
            reply = await self._answer(ctx, self.dispatch(ctx, understanding))
            reply = replace(reply, intent=understanding.intent)
        return replace(reply, municipality=await ctx.municipality_code(), language=ctx.lang)

    @staticmethod
    async def _answer(ctx: Ctx, answering: Awaitable[Reply]) -> Reply:
        """The reply; a fault of the bot's own is still an answer (no silence, no stack trace in chat), with an
        incident id that is also in the log next to the trace, so a user's report finds it."""
        try:
            return await answering
        except StoreUnavailable as exc:
            incident = new_incident()
            log.error("change not saved", extra={"conversation": ctx.turn.conversation.id, "incident": incident,
                                                 "error": str(exc)[:200]})
            key = "store.uncertain" if exc.maybe_saved else "store.unavailable"
            return Reply(ctx.t(key, incident=incident), incident=incident)
        except Exception:
            incident = new_incident()
            log.exception("dialog failed", extra={"conversation": ctx.turn.conversation.id, "incident": incident})
            return Reply(ctx.t("turn.failed", incident=incident), incident=incident)

    async def dispatch(self, ctx: Ctx, u: Understanding) -> Reply:
        """Answer an understanding: also what a "ja" confirms and what a card's button stands for."""
        spec = self.intents[u.intent]
        if spec.changes and (await ctx.thread()).pending:
            # A new change (made, or asked about) answers the question that was asked: a later "ja" is never a
            # yes to the older question, whatever the new one's reply is ("Mente du …?" for an unknown task).
            await ctx.update_thread(pending=None)
        u, reply = await references.resolve(ctx, u)
        if reply:
            return reply
        missing = [slot for slot in spec.required if u.slots.get(slot) in (None, "")]
        if missing:
            return Reply(ctx.t(f"ask.{missing[0]}"))
        if u.confirm:
            return await confirm.ask(ctx, u)
        return await self.handlers[u.intent](ctx, u)

    async def on_added(self, turn: TurnInput) -> Reply:
        ctx = await self._context(turn)
        if not self._tenant_allowed(turn):
            return Reply(ctx.t("tenant.not_allowed"))
        return await help.greet(ctx)
