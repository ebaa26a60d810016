"""Card buttons (Action.Submit) arrive as a message with `value`: each press is the typed command it
stands for, after checking the card is current: its version, and the municipality it was drawn for."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeGuard

from dialogs import confirm, gate, glossary, mark, portfolio
from dialogs.cards import CARD_VERSION
from dialogs.context import Ctx
from dialogs.need import municipality_or_reply
from dialogs.next_tasks import open_tasks_reply
from dialogs.progress import find_task
from dialogs.turn import Reply
from dialogs.understanding import Understanding


def is_press(value: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and "a" in value and "v" in value


async def handle(ctx: Ctx, value: dict[str, Any]) -> Reply:
    if type(value.get("v")) is not int or value["v"] != CARD_VERSION:  # `true == 1` in Python: not a version
        return Reply(ctx.t("press.old"))
    action = value.get("a")
    if action == "confirm":  # "Ja"/"Nej" under a question: the answer typed
        if type(value.get("ok")) is not bool or not isinstance(value.get("q", ""), str):
            return Reply(ctx.t("press.invalid"))
        if "q" not in value:  # a card drawn before questions had ids: which question it answered is unknown
            return Reply(ctx.t("confirm.stale"))
        return await confirm.pressed(ctx, value["q"], value["ok"])
    if action == "say":  # a suggestion: as if its words were typed
        said = value.get("say")
        if not isinstance(said, str) or not said.strip() or len(said) > 200:
            return Reply(ctx.t("press.invalid"))
        understander = ctx.services.understander
        return await ctx.dispatch(understander.understand(said, consultant=ctx.consultant))
    if action == "define":  # a glossary button is the same for everyone
        term = value.get("term")
        if not isinstance(term, str) or ctx.content.term(term) is None:
            return Reply(ctx.t("press.invalid"))
        return await glossary.define(ctx, Understanding("define", {"term": term}))
    if action == "export":  # the portfolio card's button: consultants only, any conversation
        return await portfolio.export(ctx, Understanding("export"))
    code = await municipality_or_reply(ctx)
    if isinstance(code, Reply):
        return code
    if value.get("m") != code:
        drawn_for = ctx.content.municipality(value["m"]) if isinstance(value.get("m"), str) else None
        if drawn_for is None:
            return Reply(ctx.t("press.invalid"))
        return Reply(ctx.t("press.other_municipality", current=ctx.municipality_name(code),
                           other=ctx.municipality_name(drawn_for.code)))
    phase = value.get("p")
    if type(phase) is not int or not 1 <= phase <= len(ctx.content.phases):
        return Reply(ctx.t("press.invalid"))
    if action in ("done", "reopen"):
        task = value.get("task")
        if not isinstance(task, str) or find_task(ctx.content, await ctx.store.municipality(code), task) is None:
            return Reply(ctx.t("press.invalid"))
        intent, handler = ("mark_done", mark.mark_done) if action == "done" else ("reopen", mark.reopen)
        result = await handler(ctx, Understanding(intent, {"task": task}))
        # Redraw the pressed card from the new state (another member may have changed it since it was drawn),
        # with the numbers it showed: "udført 4" still means what the card said was 4.
        shown = (await ctx.thread()).task_ids
        refreshed = await open_tasks_reply(ctx, code, await ctx.store.municipality(code), phase, keep=shown)
        short = (result.note or result.text).split("\n\n")[0]
        return replace(result, note=short if not result.card else result.note, replace_card=refreshed.card)
    if action == "next":
        return await open_tasks_reply(ctx, code, await ctx.store.municipality(code), phase)
    if action == "gate":
        return await gate.submit(ctx, value)
    if action == "proceed":
        state = await ctx.store.municipality(code)
        if not state.gate or state.gate["from"] != phase:
            return Reply(ctx.t("press.stale"))
        return await gate.proceed(ctx, Understanding("gate_proceed"))
    return Reply(ctx.t("press.invalid"))
