"""The conversation core's entry point: one message in, one reply out. No Bot Framework in here."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from dialogs import (assign, gate, glossary, help, history, language, local_tasks, mark, milestones, next_tasks,
                     phase_info, portfolio, presses, register, status, task_details, theme_info)
from dialogs.context import Ctx, Services
from dialogs.turn import Reply, TurnInput
from dialogs.understanding import Understanding

log = logging.getLogger(__name__)

Handler = Callable[[Ctx, Understanding], Awaitable[Reply]]

HANDLERS: dict[str, Handler] = {
    "register": register.handle,
    "status": status.handle,
    "next": next_tasks.handle,
    "phase_info": phase_info.handle,
    "theme_info": theme_info.handle,
    "define": glossary.define,
    "compare_terms": glossary.compare,
    "mark_done": mark.mark_done,
    "reopen": mark.reopen,
    "history": history.handle,
    "help": help.handle,
    "set_language": language.handle,
    "set_milestone": milestones.handle,
    "assign": assign.handle,
    "my_tasks": assign.my_tasks,
    "add_local": local_tasks.add,
    "remove_local": local_tasks.remove,
    "task_details": task_details.handle,
    "portfolio": portfolio.overview,
    "lagging": portfolio.lagging,
    "in_phase": portfolio.in_phase,
    "status_for": portfolio.status_for,
    "export": portfolio.export,
    "gate_confirm": gate.confirm,
    "gate_reject": gate.reject,
    "gate_proceed": gate.proceed,
    "move_phase": gate.move,
    "unknown": help.unknown,
}


class Assistant:
    def __init__(self, services: Services, allowed_tenants: frozenset[str] = frozenset(),
                 consultants: frozenset[str] = frozenset()):
        self.services = services
        self.allowed_tenants = allowed_tenants  # empty: every tenant
        self.consultants = consultants  # AAD object ids of KOMBIT's consultants

    def _tenant_allowed(self, turn: TurnInput) -> bool:
        return not self.allowed_tenants or (turn.conversation.tenant_id or "").lower() in self.allowed_tenants

    async def _context(self, turn: TurnInput) -> Ctx:
        preferred = await self.services.store.language(turn.user.id) if turn.user.id else None
        locale = (turn.locale or "da").lower()
        return Ctx(self.services, turn, preferred or ("da" if locale.startswith("da") else "en"),
                   consultant=bool(turn.user.id) and turn.user.id.lower() in self.consultants)

    async def on_message(self, turn: TurnInput) -> Reply:
        ctx = await self._context(turn)
        if not self._tenant_allowed(turn):
            return Reply(ctx.t("tenant.not_allowed"))
        if presses.is_press(turn.value):
            log.info("press", extra={"action": str(turn.value.get("a"))[:20], "conversation": turn.conversation.id})
            reply = await presses.handle(ctx, turn.value)
        else:
            understanding = self.services.understander.understand(
                turn.text, frozenset(person.name for person in turn.mentions))
            log.info("turn", extra={"intent": understanding.intent, "conversation": turn.conversation.id})
            reply = await HANDLERS[understanding.intent](ctx, understanding)
        return replace(reply, municipality=await ctx.municipality_code(), language=ctx.lang)

    async def on_added(self, turn: TurnInput) -> Reply:
        ctx = await self._context(turn)
        if not self._tenant_allowed(turn):
            return Reply(ctx.t("tenant.not_allowed"))
        return await help.greet(ctx)
