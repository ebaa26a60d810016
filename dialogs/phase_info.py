""""hvad er fokus i fase 3?" / "succeskriterier for opstart": the model's own text for a phase."""
from __future__ import annotations

from content import Phase
from dialogs import cards, sources
from dialogs.context import Ctx
from dialogs.markdown import bullets
from dialogs.phase_ref import phase_or_reply
from dialogs.progress import current_phase
from dialogs.turn import Reply
from dialogs.understanding import Understanding

ASPECTS = ("focus", "effect", "criteria", "actors")


async def handle(ctx: Ctx, u: Understanding) -> Reply:
    default = None
    code = await ctx.municipality_code()
    if code:
        default = current_phase(ctx.content, await ctx.store.municipality(code))
    number = phase_or_reply(ctx, u, default)
    if isinstance(number, Reply):
        return number
    phase = ctx.content.phase(number)
    aspect = u.slots.get("aspect")
    sections = [aspect] if aspect in ASPECTS else list(ASPECTS)
    lines = [ctx.t("phase.header", number=number, phase=phase.name.get(ctx.lang))]
    for section in sections:
        label = ctx.t(f"phase.{section}")
        if section == "focus":
            lines.append(f"**{label}:** {phase.focus.get(ctx.lang)}")
        elif section == "effect":
            lines.append(f"**{label}:** {phase.effect.get(ctx.lang)}")
        else:
            items = phase.success_criteria if section == "criteria" else phase.actors
            lines.append(f"**{label}:**\n" + bullets([i.get(ctx.lang) for i in items]))
    lines.append(sources.line(ctx, [phase.source]))
    return Reply("\n\n".join(lines))


def _aspects(ctx: Ctx, phase: Phase) -> list[tuple[str, list[str]]]:
    """The overview table's rows for one phase: (label, its lines)."""
    return [(ctx.t("phase.focus"), [phase.focus.get(ctx.lang)]), (ctx.t("phase.effect"), [phase.effect.get(ctx.lang)]),
            (ctx.t("phase.criteria"), [c.get(ctx.lang) for c in phase.success_criteria]),
            (ctx.t("phase.actors"), [a.get(ctx.lang) for a in phase.actors])]


def _joined(items: list[str]) -> str:
    """Several of the table's lines on one line: "a; b; c", without the full stop some of them end with."""
    return items[0] if len(items) == 1 else "; ".join(item.rstrip(".") for item in items)


async def overview(ctx: Ctx, u: Understanding) -> Reply:
    """"hvad hedder faserne?": the four phases side by side, as the model's overview table has them: a card
    with a column per phase, and the same as text, phase by phase."""
    header = ctx.t("phases.header")
    lines, columns = [header], []
    for phase in ctx.content.phases:
        name = ctx.t("phase.header", number=phase.number, phase=phase.name.get(ctx.lang))
        rows = _aspects(ctx, phase)
        lines.append(name + "\n" + "\n".join(f"- **{label}:** {_joined(items)}" for label, items in rows))
        items = [cards.text(name, weight="Bolder")]
        for label, values in rows:
            items += [cards.text(label, weight="Bolder", size="Small", spacing="Medium"),
                      cards.text("\n".join(f"- {v}" for v in values) if len(values) > 1 else values[0], size="Small")]
        columns.append({"type": "Column", "width": "stretch", "items": items})
    cited = [ctx.content.phases_source] if ctx.content.phases_source else [p.source for p in ctx.content.phases]
    lines += [ctx.t("phases.hint"), sources.line(ctx, cited)]
    body = [cards.title(header), {"type": "ColumnSet", "columns": columns}, sources.block(ctx, cited)]
    text = "\n\n".join(lines)
    return Reply(text, card=cards.card(body, text))
