""""hvad er fokus i fase 3?" / "succeskriterier for opstart": the model's own text for a phase."""
from __future__ import annotations

from dialogs import cards
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
    number, reply = phase_or_reply(ctx, u, default)
    if reply:
        return reply
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
    lines.append(f"_{ctx.t('word.source')}: {phase.source.get(ctx.lang)}_")
    return Reply("\n\n".join(lines))


async def overview(ctx: Ctx, u: Understanding) -> Reply:
    """"hvad hedder faserne?": the four phases side by side, as the model's overview table has them."""
    lines = [ctx.t("phases.header")]
    body = [cards.title(ctx.t("phases.header"))]
    for phase in ctx.content.phases:
        name = ctx.t("phase.header", number=phase.number, phase=phase.name.get(ctx.lang))
        lines.append(f"{name}\n- **{ctx.t('phase.focus')}:** {phase.focus.get(ctx.lang)}\n"
                     f"- **{ctx.t('phase.effect')}:** {phase.effect.get(ctx.lang)}")
        body += [cards.text(name, weight="Bolder", spacing="Medium"),
                 cards.facts([(ctx.t("phase.focus"), phase.focus.get(ctx.lang)),
                              (ctx.t("phase.effect"), phase.effect.get(ctx.lang))])]
    source = f"_{ctx.t('word.source')}: {ctx.t('phases.source')}_"
    lines += [ctx.t("phases.hint"), source]
    body.append(cards.subtle(source.strip("_")))
    text = "\n\n".join(lines)
    return Reply(text, card=cards.card(body, text))
