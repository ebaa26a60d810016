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
from collections.abc import Mapping
from typing import Any

from dialogs import cards, sources
from dialogs.context import Ctx
from dialogs.markdown import esc
from dialogs.need import municipality_or_reply
from dialogs.phase_ref import phase_or_reply
from dialogs.progress import current_phase, phase_progress
from dialogs.store import AuditEvent, MunicipalityState
from dialogs.text import without_mentions, words
from dialogs.turn import Reply
from dialogs.understanding import Understanding

# A self-check in progress, as the store keeps it (plain JSON): {from, to, answers: {"1": {ok, note}, …},
# awaiting_skip, skipped_open, started_by, at, conversation}, and skip_confirmed once a skip past open tasks is.
Gate = Mapping[str, Any]


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


async def submit(ctx: Ctx, value: dict[str, Any]) -> Reply:
    """The self-check card's "save": every toggle is an answer; the note goes with the unconfirmed ones."""
    code = await municipality_or_reply(ctx)
    if isinstance(code, Reply):
        return code
    gate = (await ctx.store.municipality(code)).gate
    if not gate or value.get("p") != gate["from"]:
        return Reply(ctx.t("press.stale"))  # the card's transition is over (or another one started)
    if gate.get("awaiting_skip"):
        return Reply(ctx.tn("gate.skip_first", gate["skipped_open"]))
    typed = value.get("note")
    note = typed if isinstance(typed, str) else ""
    answers = {str(i): {"ok": value.get(f"c{i}") == "true", "note": "" if value.get(f"c{i}") == "true" else note[:500]}
               for i in range(1, len(_criteria(ctx, gate["from"])) + 1)}
    gate = {**gate, "answers": answers}
    if all(a["ok"] for a in answers.values()):
        return await _complete(ctx, code, gate)
    await ctx.store.set_gate(code, gate)
    updated = checklist_reply(ctx, code, gate)
    return Reply(updated.text, note=ctx.t("gate.saved"), replace_card=updated.card)


def start(ctx: Ctx, source: int, skipped_open: int = 0) -> dict[str, Any]:
    turn = ctx.turn
    return {"from": source, "to": source + 1, "answers": {}, "awaiting_skip": False, "skipped_open": skipped_open,
            "started_by": {"id": turn.user.id, "name": turn.user.name}, "at": turn.now.isoformat(),
            "conversation": turn.conversation.id}


async def begin_after_last_task(ctx: Ctx, code: str, state: MunicipalityState) -> dict[str, Any] | None:
    """Called when a task completed its phase: starts the self-check if that phase is the current one."""
    phase = current_phase(ctx.content, state)
    if state.gate or phase >= len(ctx.content.phases) or not phase_progress(ctx.content, state)[phase - 1].complete:
        return None
    gate = start(ctx, phase)
    await ctx.store.set_gate(code, gate)
    return gate


async def _gate_or_reply(ctx: Ctx) -> tuple[str, Gate] | Reply:
    """The municipality and its self-check in progress, or the reply that says there is none."""
    code = await municipality_or_reply(ctx)
    if isinstance(code, Reply):
        return code
    state = await ctx.store.municipality(code)
    if not state.gate:
        target = min(current_phase(ctx.content, state) + 1, len(ctx.content.phases))
        name = ctx.content.phase(target).name.get(ctx.lang)
        return Reply(ctx.t("gate.none", target_name=name))
    return code, state.gate


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


async def _answer(ctx: Ctx, u: Understanding, ok: bool) -> Reply:
    found = await _gate_or_reply(ctx)
    if isinstance(found, Reply):
        return found
    code, gate = found
    if gate.get("awaiting_skip"):
        return Reply(ctx.tn("gate.skip_first", gate["skipped_open"]))
    numbers, note = _picked(ctx, gate, str(u.slots.get("numbers", "")))
    if not numbers:
        return Reply(ctx.t("gate.which", last=len(_criteria(ctx, gate["from"]))))
    answers = dict(gate["answers"])
    for n in numbers:
        answers[str(n)] = {"ok": ok, "note": "" if ok else note[:500]}
    gate = {**gate, "answers": answers}
    if all(answers.get(str(i), {}).get("ok") for i in range(1, len(_criteria(ctx, gate["from"])) + 1)):
        return await _complete(ctx, code, gate)
    await ctx.store.set_gate(code, gate)
    return checklist_reply(ctx, code, gate)


async def proceed(ctx: Ctx, u: Understanding) -> Reply:
    """"fortsæt alligevel": confirms a skip past open tasks, or moves on with the gaps as exceptions."""
    found = await _gate_or_reply(ctx)
    if isinstance(found, Reply):
        return found
    code, gate = found
    if gate.get("awaiting_skip"):
        gate = {**gate, "awaiting_skip": False, "skip_confirmed": True}
        await ctx.store.set_gate(code, gate)
        return checklist_reply(ctx, code, gate)
    return await _complete(ctx, code, gate)


def _open_question(ctx: Ctx, gate: Gate) -> Reply:
    source = ctx.content.phase(gate["from"]).name.get(ctx.lang)
    return Reply(ctx.tn("gate.open_tasks", gate["skipped_open"], source=gate["from"], source_name=source))


async def _complete(ctx: Ctx, code: str, gate: Gate) -> Reply:
    # A task reopened while the checklist was open still needs the explicit skip before the phase moves.
    progress = phase_progress(ctx.content, await ctx.store.municipality(code))[gate["from"] - 1]
    open_now = progress.total - progress.done
    if open_now and not gate.get("skip_confirmed"):
        gate = {**gate, "awaiting_skip": True, "skipped_open": open_now}
        await ctx.store.set_gate(code, gate)
        return _open_question(ctx, gate)
    gate = {**gate, "skipped_open": open_now}
    criteria = [c.da for c in ctx.content.phase(gate["from"]).success_criteria]  # the audit keeps the model's words
    answers = [{"criterion": c, **gate["answers"].get(str(i), {"ok": None, "note": ""})}
               for i, c in enumerate(criteria, start=1)]
    exceptions = [a for a in answers if not a["ok"]]
    turn = ctx.turn
    await ctx.store.record(AuditEvent(code, "phase", None, turn.user, turn.now.isoformat(), turn.conversation.id, details={
        "from": gate["from"], "to": gate["to"], "answers": answers, "exceptions": len(exceptions),
        "skipped_open": gate.get("skipped_open", 0)}))
    target = ctx.content.phase(gate["to"])
    name = target.name.get(ctx.lang)
    text = ctx.tn("gate.done.exceptions", len(exceptions), target=gate["to"], target_name=name) if exceptions \
        else ctx.t("gate.done", target=gate["to"], target_name=name)
    return Reply(text + "\n\n" + ctx.t("gate.next", target=gate["to"]))


async def move(ctx: Ctx, u: Understanding) -> Reply:
    """"gå videre til Ibrugtagning" / "move on to phase 3" / "gå tilbage til Forberedelse"."""
    code = await municipality_or_reply(ctx)
    if isinstance(code, Reply):
        return code
    state = await ctx.store.municipality(code)
    current = current_phase(ctx.content, state)
    target = phase_or_reply(ctx, u, default=min(current + 1, len(ctx.content.phases)))
    if isinstance(target, Reply):
        return target
    name = ctx.content.phase(target).name.get(ctx.lang)
    if target == current:
        return Reply(ctx.t("gate.already", target=target, target_name=name))
    if target < current:
        turn = ctx.turn
        await ctx.store.record(AuditEvent(code, "phase", None, turn.user, turn.now.isoformat(), turn.conversation.id,
                                          details={"from": current, "to": target, "back": True}))
        return Reply(ctx.t("gate.back", target=target, target_name=name))
    if target > current + 1:
        following = ctx.content.phase(current + 1).name.get(ctx.lang)
        return Reply(ctx.t("gate.one_at_a_time", target=current + 1, target_name=following))
    if state.gate:
        return _open_question(ctx, state.gate) if state.gate.get("awaiting_skip") else checklist_reply(ctx, code, state.gate)
    open_count = phase_progress(ctx.content, state)[current - 1]
    remaining = open_count.total - open_count.done
    gate = start(ctx, current, skipped_open=remaining)
    if remaining:
        gate["awaiting_skip"] = True
        await ctx.store.set_gate(code, gate)
        return _open_question(ctx, gate)
    await ctx.store.set_gate(code, gate)
    return checklist_reply(ctx, code, gate)
