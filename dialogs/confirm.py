""""Mener du, at «Udpeg projektleder» er udført?": a change the bot is not sure was meant is asked about
first, and made on "ja" (or the card's button) by the same person in the same thread. "nej" drops it.

"ja"/"nej" with nothing asked answer the phase gate's self-check when one is open ("ja 1 3"), else they
are just acknowledged. Asked as a question ("ja?", "er 2 opfyldt?") they change nothing: `check`.
"""
from __future__ import annotations

import re
from typing import Any

from dialogs import gate
from dialogs.assign import person_of
from dialogs.confirm_question import pending_question
from dialogs.context import Ctx
from dialogs.dates import DateError, parse_date
from dialogs.markdown import esc
from dialogs.need import municipality_or_reply
from dialogs.phase_ref import phase_or_reply
from dialogs.progress import current_phase
from dialogs.store import open_question
from dialogs.task_ref import municipality_and_task
from dialogs.text import words
from dialogs.turn import Reply
from dialogs.understanding import Understanding


async def ask(ctx: Ctx, u: Understanding) -> Reply:
    described = await _describe(ctx, u)
    if isinstance(described, Reply):
        return described
    question, slots = described
    return await pending_question(ctx, u.intent, slots, question)


async def _describe(ctx: Ctx, u: Understanding) -> tuple[str, dict[str, Any]] | Reply:
    """The question and the slots to act on later; or the reply when something cannot be named (an unknown
    task, no date): that is asked for instead, and nothing is pending."""
    slots: dict[str, Any] = {k: v for k, v in u.slots.items() if isinstance(v, (str, int))}
    if u.intent == "register":
        chosen = u.slots.get("municipality")
        if "municipality" in u.unresolved or not chosen or ctx.content.municipality(str(chosen)) is None:
            return await ctx.dispatch(Understanding(u.intent, u.slots, u.unresolved))  # asks which
        existing = await ctx.store.registration(ctx.turn.conversation.scope)
        if existing or u.doubts == ("only a name",):
            # Registered already: the dialog says so, or asks about switching (with both names). Nothing yet:
            # a municipality's name alone is the answer to "which municipality are you?"
            return await ctx.dispatch(Understanding(u.intent, {"municipality": chosen}))
        return ctx.t("confirm.register", name=ctx.municipality_name(str(chosen))), slots
    code = await municipality_or_reply(ctx)
    if isinstance(code, Reply):
        return code
    if u.intent in ("mark_done", "reopen", "assign", "remove_local"):
        found = await municipality_and_task(ctx, u)
        if isinstance(found, Reply):
            return found
        task = found[1]
        slots["task"] = task.id
        title = task.title.get(ctx.lang)
        if u.intent == "assign":
            typed = str(u.slots.get("person", ""))
            slots["person"] = person_of(ctx, typed)  # with the mention's ids, which the "ja" will not carry
            who = ctx.t("word.you") if typed == "@me" else esc(slots["person"]["name"])
            role = ctx.t(f"assign.role.{u.slots.get('role', 'performer')}")
            return ctx.t("confirm.assign", task=title, person=who, role=role), slots
        return ctx.t(f"confirm.{u.intent}", task=title), slots
    if u.intent == "set_milestone":
        try:
            when = parse_date(str(u.slots.get("date", "")), ctx.today())
        except DateError:
            when = None
        if when is None or u.slots.get("milestone") not in ("idriftsaettelsesdato", "go-live"):
            return await ctx.dispatch(Understanding(u.intent, u.slots))  # it refuses, changing nothing
        slots["date"] = when.isoformat()
        label = ctx.content.known_term(u.slots["milestone"]).term.get(ctx.lang)
        return ctx.t("confirm.set_milestone", milestone=label, date=ctx.date(when)), slots
    if u.intent == "move_phase":
        current = current_phase(ctx.content, await ctx.store.municipality(code))
        target = phase_or_reply(ctx, u, default=min(current + 1, len(ctx.content.phases)))
        if isinstance(target, Reply):
            return target
        if target == current:
            return await ctx.dispatch(Understanding(u.intent, {"phase": target}))  # "I er allerede i …"
        slots["phase"] = target
        key = "confirm.move_phase.back" if target < current else "confirm.move_phase"
        return ctx.t(key, number=target, phase=ctx.content.phase(target).name.get(ctx.lang)), slots
    if u.intent == "add_local":
        title = esc(str(u.slots.get("title", "")))
        if not title:
            return Reply(ctx.t("local.how"))
        return ctx.t("confirm.add_local", title=title), slots
    if not (await ctx.store.municipality(code)).gate:  # gate_proceed
        return await ctx.dispatch(Understanding(u.intent))  # "Der er ingen faseovergang i gang"
    return ctx.t("confirm.gate_proceed"), slots


async def waiting(ctx: Ctx) -> dict[str, Any] | None:
    """The question this person has to answer here, if any; reading it changes nothing."""
    pending = (await ctx.thread()).pending
    if pending is None or not open_question(pending, ctx.turn.user.id, ctx.turn.now):
        return None
    return dict(pending)


async def asked(ctx: Ctx) -> bool:
    """Whether this person has a question from the bot to answer here."""
    return await waiting(ctx) is not None


async def _take(ctx: Ctx, asked_id: str | None = None) -> dict[str, Any] | None:
    """The question answered now, cleared in the same write: a second "ja" (or a double click) finds none."""
    return await ctx.take_pending(asked_id)


async def _make(ctx: Ctx, pending: dict[str, Any]) -> Reply:
    return await ctx.dispatch(Understanding(pending["intent"], dict(pending["slots"])))


async def pressed(ctx: Ctx, asked_id: str, ok: bool) -> Reply:
    """The card's "Ja"/"Nej": an answer to that very question, or to none (a newer one was asked since, it
    was answered already, it is older than FRESH, or it was asked of someone else)."""
    pending = await _take(ctx, asked_id)
    if pending is None:
        return Reply(ctx.t("confirm.stale"))
    return await _make(ctx, pending) if ok else Reply(ctx.t("confirm.dropped"))


async def yes(ctx: Ctx, u: Understanding) -> Reply:
    if not u.slots.get("numbers"):
        pending = await _take(ctx)
        if pending:
            return await _make(ctx, pending)
    if await _gate_open(ctx):  # "ja 1 3": the self-check's criteria
        return await gate.confirm(ctx, u)
    numbers = re.findall(r"\d+", str(u.slots.get("numbers", "")))
    said = words(u.text)
    if len(numbers) == 1 and said and not ctx.services.understander.words.yes.at(said, 0) and \
            (await ctx.thread()).task_ids:
        # "nr 3 er på plads" (no "ja" in front, no self-check open): number 3 of the list on screen is done
        return await ctx.dispatch(Understanding("mark_done", {"task": int(numbers[0])}))
    if u.slots.get("numbers"):
        return await gate.confirm(ctx, u)  # it says that no self-check is open
    return Reply(ctx.t("confirm.nothing_asked"))


async def no(ctx: Ctx, u: Understanding) -> Reply:
    if not u.slots.get("numbers") and await _take(ctx):
        return Reply(ctx.t("confirm.dropped"))
    if u.slots.get("numbers") or await _gate_open(ctx):
        return await gate.reject(ctx, u)
    return Reply(ctx.t("confirm.nothing_asked"))


async def check(ctx: Ctx, u: Understanding) -> Reply:
    """"ja?", "er 2 opfyldt?", "er nr 3 på plads?": a yes or no asked as a question changes nothing. It
    repeats the question waiting for an answer, shows the self-check as it stands, or the listed task."""
    numbers = re.findall(r"\d+", str(u.slots.get("numbers", "")))
    pending = await waiting(ctx)
    if pending and not numbers:
        return Reply((pending.get("question") or ctx.t("confirm.waiting")) + "\n\n" + ctx.t("confirm.how"))
    if await _gate_open(ctx):
        return await gate.show(ctx)
    if len(numbers) == 1 and (await ctx.thread()).task_ids:
        return await ctx.dispatch(Understanding("task_status", {"task": int(numbers[0])}))
    if numbers:
        return await gate.show(ctx)  # it says that no self-check is open
    return Reply(ctx.t("confirm.nothing_asked"))


async def _gate_open(ctx: Ctx) -> bool:
    code = await ctx.municipality_code()
    if not code:
        return False
    return bool((await ctx.store.municipality(code)).gate)
