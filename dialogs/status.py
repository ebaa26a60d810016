""""status" / "hvor er vi?": phase, counts per phase and overall, milestones."""
from __future__ import annotations

from dialogs import cards
from dialogs.context import Ctx
from dialogs.need import municipality_or_reply
from dialogs.progress import current_phase, milestones_of, phase_progress
from dialogs.turn import Reply
from dialogs.understanding import Understanding


async def handle(ctx: Ctx, u: Understanding) -> Reply:
    code = await municipality_or_reply(ctx)
    if isinstance(code, Reply):
        return code
    return await status_reply(ctx, code)


async def status_reply(ctx: Ctx, code: str) -> Reply:
    state = await ctx.store.municipality(code)
    current = current_phase(ctx.content, state)
    progress = phase_progress(ctx.content, state)
    phase = ctx.content.phase(current)
    header = ctx.t("status.header", name=ctx.municipality_name(code), number=current, phase=phase.name.get(ctx.lang))
    lines, rows, facts = [header], [], []
    for p in progress:
        name = ctx.content.phase(p.number).name.get(ctx.lang)
        key = "status.row.current" if p.number == current else "status.row"
        rows.append(ctx.t(key, number=p.number, phase=name, progress=ctx.progress(p.done, p.total)))
        facts.append((ctx.t("phase.label", number=p.number, phase=name), f"{p.done}/{p.total}" + (" ✓" if p.complete else "")))
    lines.append("\n".join(f"- {r}" for r in rows))
    total = ctx.t("status.total", progress=ctx.progress(sum(p.done for p in progress), sum(p.total for p in progress)))
    lines.append(total)
    for milestone in milestones_of(ctx.content, state).values():
        term = ctx.content.known_term(milestone.name).term.get(ctx.lang)
        wave = ctx.content.project.wave_of(code) if milestone.wave else None
        when = ctx.t("status.when.wave" if wave else "status.when", date=ctx.date(milestone.date),
                     left=ctx.until(milestone.date), wave=wave.name.get(ctx.lang) if wave else "")
        lines.append(ctx.t("status.milestone", name=term, when=when))
        facts.append((term, when))
    extra = []
    if state.gate:
        target = ctx.content.phase(state.gate["to"]).name.get(ctx.lang)
        extra.append(ctx.t("status.gate", target=state.gate["to"], target_name=target))
    lines += [*extra, ctx.t("status.hint")]
    text = "\n\n".join(lines)
    body = [cards.title(header), cards.facts(facts), cards.text(total), *map(cards.text, extra)]
    return Reply(text, card=cards.card(body, text, [cards.button(ctx.t("card.next"), "next", code, p=current)]))


async def count(ctx: Ctx, u: Understanding) -> Reply:
    """"hvor mange opgaver mangler vi?": the numbers, in a phase or in all."""
    code = await municipality_or_reply(ctx)
    if isinstance(code, Reply):
        return code
    progress = phase_progress(ctx.content, await ctx.store.municipality(code))
    number = u.slots.get("phase")
    if isinstance(number, int):
        p = progress[number - 1]
        phase = ctx.content.phase(number).name.get(ctx.lang)
        head = ctx.tn("count.phase", p.total - p.done, number=number, phase=phase, progress=ctx.progress(p.done, p.total))
    else:
        done, total = sum(p.done for p in progress), sum(p.total for p in progress)
        head = ctx.tn("count.all", total - done, progress=ctx.progress(done, total))
    return Reply(head + "\n\n" + ctx.t("count.hint"))
