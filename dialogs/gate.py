"""The transition self-check ("faseovergang"): the success criteria of the phase being left, confirmed
one by one, before the municipality moves on. The model: "Succeskriterier kan med fordel bruges, når
projektet formulerer tjek/selvtjek ved faseovergange".

Flow: the last open task of the current phase is marked done (or "gå videre til Ibrugtagning") ->
checklist; "ja 1 3" / "ja til alle" confirm, "ikke endnu 2: note" records a gap; when all are confirmed,
or on "fortsæt alligevel" (the gaps recorded as exceptions), the phase moves and the audit trail gets who,
when, answers and exceptions. Moving back is allowed and recorded. Open tasks in the phase being left
need an explicit confirmation that names their count first.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from dialogs import cards, sources
from dialogs import gate_steps as steps
from dialogs.context import Ctx
from dialogs.markdown import esc
from dialogs.need import municipality_or_reply
from dialogs.phase_ref import phase_or_reply
from dialogs.progress import current_phase, phase_progress
from dialogs.store import AuditEvent, MunicipalityState
from dialogs.text import without_mentions, words
from dialogs.turn import Reply
from dialogs.understanding import Understanding

# A self-check in progress, as dialogs/events.py builds it: {from, to, answers: {"1": {ok, note}, …},
# awaiting_skip, skipped_open, started_by, at, conversation}, and skip_confirmed once a skip past open tasks is.
Gate = steps.Gate


def _numbers_pattern(ctx: Ctx) -> re.Pattern[str]:
    """Criterion numbers: "1", "1 3", "1, 2 og 3" (the joining words from words.yaml). A ":" ends them, so
    "2: 3 ledere mangler" is [2] and a note."""
    joins = sorted({" ".join(p) for p in ctx.services.understander.words.conjunctions.phrases}, key=len, reverse=True)
    join = "|".join(rf"\s+{re.escape(j)}\s+" for j in joins)
    return re.compile(rf"\b\d+(?:(?:\s*,\s*|{join}|\s*&\s*|\s+)\d+)*\b", re.IGNORECASE)


def _all_meant(ctx: Ctx, raw: str) -> bool:
    """"alle", "til alle", "all of them": every criterion."""
    w = ctx.services.understander.words
    tokens = words(raw)
    tokens = tokens[w.number_words.at(tokens, 0):]
    return bool(tokens) and bool(w.all_words.at(tokens, 0))


def _criteria(ctx: Ctx, phase: int) -> list[str]:
    return [c.get(ctx.lang) for c in ctx.content.phase(phase).success_criteria]


def _header(ctx: Ctx, gate: Gate) -> str:
    source, target = ctx.content.phase(gate["from"]), ctx.content.phase(gate["to"])
    return ctx.t("gate.header", source=gate["from"], source_name=source.name.get(ctx.lang),
                 target=gate["to"], target_name=target.name.get(ctx.lang))


def checklist(ctx: Ctx, gate: Gate) -> str:
    """The self-check as text: header, one line per criterion with its answer, and how to answer."""
    lines = [_header(ctx, gate), ctx.t("gate.intro")]
    rows = []
    for index, criterion in enumerate(_criteria(ctx, gate["from"]), start=1):
        answer = gate["answers"].get(str(index))
        mark = "⬜" if answer is None else ("✅" if answer["ok"] else "❌")
        note = f" – _{esc(answer['note'], 200)}_" if answer and answer.get("note") else ""
        rows.append(f"{index}. {mark} {criterion}{note}")
    lines.append("\n".join(rows))
    lines += [ctx.t("gate.how"), sources.line(ctx, [ctx.content.phase(gate["from"]).source])]
    return "\n\n".join(lines)


def checklist_reply(ctx: Ctx, code: str, gate: Gate, note: str | None = None) -> Reply:
    """The self-check as text and as a card: a toggle per criterion, a note field, save and proceed."""
    text = checklist(ctx, gate)
    body = [cards.title(_header(ctx, gate).strip("*")), cards.text(ctx.t("gate.intro"))]
    for index, criterion in enumerate(_criteria(ctx, gate["from"]), start=1):
        answer = gate["answers"].get(str(index))
        body.append(cards.toggle(f"c{index}", criterion, bool(answer and answer["ok"])))
        if answer and answer.get("note"):
            body.append(cards.subtle(esc(answer["note"], 200)))
    body.append(cards.note_input("note", ctx.t("card.note")))
    body.append(sources.block(ctx, [ctx.content.phase(gate["from"]).source]))
    actions = [cards.button(ctx.t("card.save"), "gate", code, p=gate["from"]),
               cards.button(ctx.t("card.proceed"), "proceed", code, p=gate["from"])]
    if note:
        text = f"{note}\n\n{text}"
    return Reply(text, card=cards.card(body, text, actions), note=note)


def origin(ctx: Ctx) -> steps.Origin:
    turn = ctx.turn
    return steps.Origin(turn.user, turn.now.isoformat(), turn.conversation.id)


# What a change to the self-check ended in, for the reply: the gate as it now is, or how the phase moved.
Outcome = tuple[str, Any]


def _answered(ctx: Ctx, state: MunicipalityState, answers: dict[str, dict[str, Any]]) -> tuple[list[AuditEvent], Outcome]:
    """Record answers; once every criterion is confirmed, move on (or first ask about reopened tasks)."""
    events = [steps.answer(state, origin(ctx), answers)]
    gate = {**(state.gate or {}), "answers": events[0].details["answers"]}  # type: ignore[index]
    if all(gate["answers"].get(str(i), {}).get("ok") for i in range(1, len(_criteria(ctx, gate["from"])) + 1)):
        more, outcome = _completion(ctx, state, gate)
        return events + more, outcome
    return events, ("checking", gate)


def _completion(ctx: Ctx, state: MunicipalityState, gate: Gate) -> tuple[list[AuditEvent], Outcome]:
    # A task reopened while the checklist was open still needs the explicit skip before the phase moves.
    progress = phase_progress(ctx.content, state)[gate["from"] - 1]
    open_now = progress.total - progress.done
    if open_now and not gate.get("skip_confirmed"):
        return [steps.wait(state, origin(ctx), open_now)], ("awaiting_skip", {**gate, "skipped_open": open_now})
    criteria = [c.da for c in ctx.content.phase(gate["from"]).success_criteria]  # the audit keeps the model's words
    event = steps.complete(state, origin(ctx), gate, criteria, open_now)
    return [event], ("moved", event.details)


def _reply(ctx: Ctx, code: str, outcome: Outcome) -> Reply:
    what, value = outcome
    if what == "none":
        return value  # type: ignore[no-any-return]
    if what == "skip_first":
        return Reply(ctx.tn("gate.skip_first", value["skipped_open"]))
    if what == "which":
        return Reply(ctx.t("gate.which", last=len(_criteria(ctx, value["from"]))))
    if what == "awaiting_skip":
        return _open_question(ctx, value)
    if what == "moved":
        target = ctx.content.phase(value["to"])
        name = target.name.get(ctx.lang)
        exceptions = value["exceptions"]
        text = ctx.tn("gate.done.exceptions", exceptions, target=value["to"], target_name=name) if exceptions \
            else ctx.t("gate.done", target=value["to"], target_name=name)
        return Reply(text + "\n\n" + ctx.t("gate.next", target=value["to"]))
    return checklist_reply(ctx, code, value)


async def submit(ctx: Ctx, value: dict[str, Any]) -> Reply:
    """The self-check card's "save": every toggle is an answer; the note goes with the unconfirmed ones."""
    code = await municipality_or_reply(ctx)
    if isinstance(code, Reply):
        return code
    typed = value.get("note")
    note = typed if isinstance(typed, str) else ""

    def decide(state: MunicipalityState) -> tuple[list[AuditEvent], Outcome]:
        gate = state.gate
        if not gate or value.get("p") != gate["from"]:
            return [], ("stale", None)  # the card's transition is over (or another one started)
        if gate.get("awaiting_skip"):
            return [], ("skip_first", gate)
        answers = {str(i): {"ok": value.get(f"c{i}") == "true", "note": "" if value.get(f"c{i}") == "true" else note[:500]}
                   for i in range(1, len(_criteria(ctx, gate["from"])) + 1)}
        return _answered(ctx, state, answers)

    outcome = await ctx.store.change(code, decide)
    if outcome[0] == "stale":
        return Reply(ctx.t("press.stale"))
    if outcome[0] == "checking":
        updated = checklist_reply(ctx, code, outcome[1])
        return Reply(updated.text, note=ctx.t("gate.saved"), replace_card=updated.card)
    return _reply(ctx, code, outcome)


async def begin_after_last_task(ctx: Ctx, code: str) -> Gate | None:
    """Called when a task completed its phase: starts the self-check if that phase is the current one (checked
    again inside the store's change, so two last marks at once start one self-check)."""
    def decide(state: MunicipalityState) -> tuple[list[AuditEvent], Gate | None]:
        phase = current_phase(ctx.content, state)
        if state.gate or phase >= len(ctx.content.phases) or not phase_progress(ctx.content, state)[phase - 1].complete:
            return [], None
        event = steps.start(state, origin(ctx), phase, open_tasks=0)
        return [event], {"from": phase, "to": phase + 1, "answers": {}, "awaiting_skip": False, "skipped_open": 0}
    return await ctx.store.change(code, decide)


async def _gate_or_reply(ctx: Ctx) -> tuple[str, Gate] | Reply:
    """The municipality and its self-check in progress, or the reply that says there is none."""
    code = await municipality_or_reply(ctx)
    if isinstance(code, Reply):
        return code
    state = await ctx.store.municipality(code)
    if not state.gate:
        return _no_gate(ctx, state)
    return code, state.gate


def _no_gate(ctx: Ctx, state: MunicipalityState) -> Reply:
    target = min(current_phase(ctx.content, state) + 1, len(ctx.content.phases))
    return Reply(ctx.t("gate.none", target_name=ctx.content.phase(target).name.get(ctx.lang)))


def _picked(ctx: Ctx, gate: Gate, raw: str) -> tuple[list[int], str]:
    """"ja 1 og 3" -> [1, 3]; "ikke endnu 2: 3 ledere mangler, afventer byrådet" -> [2] and that note, as typed.

    The numbers are the first run of numbers in the message; the note is everything typed after them, taken
    from the message itself (punctuation kept), so a note may mention numbers or "alle"."""
    count = len(_criteria(ctx, gate["from"]))
    if _all_meant(ctx, raw):
        return list(range(1, count + 1)), ""
    typed = without_mentions(ctx.turn.text)
    match = _numbers_pattern(ctx).search(typed)
    if not match:
        return [], ""
    numbers = [int(n) for n in re.findall(r"\d+", match[0])]
    note = typed[match.end():].lstrip(" :-–—").strip()
    return [n for n in numbers if 1 <= n <= count], note


async def show(ctx: Ctx) -> Reply:
    """The self-check as it stands, changing nothing."""
    found = await _gate_or_reply(ctx)
    return found if isinstance(found, Reply) else checklist_reply(ctx, *found)


async def confirm(ctx: Ctx, u: Understanding) -> Reply:
    return await _answer(ctx, u, ok=True)


async def reject(ctx: Ctx, u: Understanding) -> Reply:
    return await _answer(ctx, u, ok=False)


GateStep = Callable[[MunicipalityState, Gate], tuple[list[AuditEvent], Outcome]]


async def _step(ctx: Ctx, step: GateStep) -> Reply:
    """A step of the self-check in progress, decided inside the store's change ("there is none" if it ended)."""
    code = await municipality_or_reply(ctx)
    if isinstance(code, Reply):
        return code

    def decide(state: MunicipalityState) -> tuple[list[AuditEvent], Outcome]:
        if not state.gate:
            return [], ("none", _no_gate(ctx, state))
        return step(state, state.gate)

    return _reply(ctx, code, await ctx.store.change(code, decide))


async def _answer(ctx: Ctx, u: Understanding, ok: bool) -> Reply:
    def answer(state: MunicipalityState, gate: Gate) -> tuple[list[AuditEvent], Outcome]:
        if gate.get("awaiting_skip"):
            return [], ("skip_first", gate)
        numbers, note = _picked(ctx, gate, str(u.slots.get("numbers", "")))
        if not numbers:
            return [], ("which", gate)
        return _answered(ctx, state, {str(n): {"ok": ok, "note": "" if ok else note[:500]} for n in numbers})
    return await _step(ctx, answer)


async def proceed(ctx: Ctx, u: Understanding) -> Reply:
    """"fortsæt alligevel": confirms a skip past open tasks, or moves on with the gaps as exceptions."""
    def go_on(state: MunicipalityState, gate: Gate) -> tuple[list[AuditEvent], Outcome]:
        if gate.get("awaiting_skip"):
            return [steps.confirm_skip(state, origin(ctx))], ("checking", {**gate, "awaiting_skip": False,
                                                                          "skip_confirmed": True})
        return _completion(ctx, state, gate)
    return await _step(ctx, go_on)


def _open_question(ctx: Ctx, gate: Gate) -> Reply:
    source = ctx.content.phase(gate["from"]).name.get(ctx.lang)
    return Reply(ctx.tn("gate.open_tasks", gate["skipped_open"], source=gate["from"], source_name=source))


async def move(ctx: Ctx, u: Understanding) -> Reply:
    """"gå videre til Ibrugtagning" / "move on to phase 3" / "gå tilbage til Forberedelse"."""
    code = await municipality_or_reply(ctx)
    if isinstance(code, Reply):
        return code
    current = current_phase(ctx.content, await ctx.store.municipality(code))
    target = phase_or_reply(ctx, u, default=min(current + 1, len(ctx.content.phases)))
    if isinstance(target, Reply):
        return target

    def decide(state: MunicipalityState) -> tuple[list[AuditEvent], Outcome]:
        current = current_phase(ctx.content, state)  # as it is now, inside the change
        name = ctx.content.phase(target).name.get(ctx.lang)
        if target == current:
            return [], ("none", Reply(ctx.t("gate.already", target=target, target_name=name)))
        if target < current:
            return [steps.back(state, origin(ctx), current, target)], \
                ("none", Reply(ctx.t("gate.back", target=target, target_name=name)))
        if target > current + 1:
            following = ctx.content.phase(current + 1).name.get(ctx.lang)
            return [], ("none", Reply(ctx.t("gate.one_at_a_time", target=current + 1, target_name=following)))
        if state.gate:
            return [], ("awaiting_skip" if state.gate.get("awaiting_skip") else "checking", state.gate)
        progress = phase_progress(ctx.content, state)[current - 1]
        remaining = progress.total - progress.done
        event = steps.start(state, origin(ctx), current, open_tasks=remaining)
        gate = {**(event.details or {}), "answers": {}}
        return [event], ("awaiting_skip" if remaining else "checking", gate)

    return _reply(ctx, code, await ctx.store.change(code, decide))
