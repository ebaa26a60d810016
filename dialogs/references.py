"""What "den"/"that" and "næste fase"/"fasen vi står i" point at, resolved before a dialog runs.

The understanding says only that a message refers back ("@ref") or to a phase by where the municipality
is ("@current", "@next", "@previous"); this thread's context and the municipality's state say which.
"""
from __future__ import annotations

from dataclasses import replace

from dialogs.context import Ctx
from dialogs.need import municipality_or_reply
from dialogs.progress import current_phase, find_task
from dialogs.store import fresh
from dialogs.turn import Reply
from dialogs.understanding import Understanding

_STEP = {"@current": 0, "@next": 1, "@previous": -1}


async def resolve(ctx: Ctx, u: Understanding) -> tuple[Understanding, Reply | None]:
    slots = dict(u.slots)
    if slots.get("task") == "@ref":
        last = (await ctx.thread()).last_task
        code = await ctx.municipality_code()
        state = await ctx.store.municipality(code) if code else None
        if not last or (state and find_task(ctx.content, state, last) is None) or (not state and not ctx.content.task(last)):
            return u, Reply(ctx.t("ask.task"))
        slots["task"] = last
        if ctx.content.intents[u.intent].changes and not await _own_and_fresh(ctx):
            u = replace(u, confirm=True)  # "den er færdig" about a task someone else named, or named long ago
    phase = slots.get("phase")
    if phase in _STEP:
        registered = await municipality_or_reply(ctx)
        if isinstance(registered, Reply):
            return u, registered
        number = current_phase(ctx.content, await ctx.store.municipality(registered)) + _STEP[phase]
        if not 1 <= number <= len(ctx.content.phases):
            return u, Reply(ctx.t("phase.none_after" if _STEP[phase] > 0 else "phase.none_before"))
        slots["phase"] = number
    return replace(u, slots=slots), None


async def _own_and_fresh(ctx: Ctx) -> bool:
    """Whether the task "den" points at was named by this person, within FRESH."""
    thread = await ctx.thread()
    return thread.last_task_by == ctx.turn.user.id and fresh(thread.last_task_at, ctx.turn.now)
