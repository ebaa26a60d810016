""""hvad handler temaet Gevinster og værdier om?": the theme's purpose and its tasks by phase."""
from __future__ import annotations

from dialogs import sources
from dialogs.context import Ctx
from dialogs.markdown import bullets, esc
from dialogs.turn import Reply
from dialogs.understanding import Understanding


async def handle(ctx: Ctx, u: Understanding) -> Reply:
    if "theme" in u.unresolved or not u.slots.get("theme"):
        names = [t.name.get(ctx.lang) for t in ctx.content.themes]
        return Reply(ctx.t("theme.unknown", text=esc(str(u.slots.get("theme", ""))), options=ctx.either(names)))
    theme = ctx.content.theme(u.slots["theme"])
    lines = [f"**{ctx.t('theme.header', theme=theme.name.get(ctx.lang))}**", theme.purpose.get(ctx.lang)]
    listed = []
    for phase in ctx.content.phases:
        tasks = [t for t in ctx.content.tasks_in(phase.number) if t.theme == theme.id]
        if tasks:
            heading = ctx.t("theme.phase", number=phase.number, phase=phase.name.get(ctx.lang))
            lines.append(f"{heading}\n" + bullets([t.title.get(ctx.lang) for t in tasks]))
            listed += tasks
    if listed:  # the model's tasks are examples, and the model places none of them in a phase
        lines.append(ctx.t("theme.examples"))
        if any(t.details_source is None or t.details_source.kind == "draft" for t in listed):
            lines.append(ctx.t("theme.placement.draft"))
    lines.append(sources.line(ctx, [theme.source, *sources.of_titles(listed)]))
    return Reply("\n\n".join(lines))


async def overview(ctx: Ctx, u: Understanding) -> Reply:
    """"hvilke temaer er der?": the model's seven themes and what each helps the municipality do."""
    rows = [f"**{t.name.get(ctx.lang)}**: {t.purpose.get(ctx.lang)}" for t in ctx.content.themes]
    cited = [ctx.content.themes_source] if ctx.content.themes_source else [t.source for t in ctx.content.themes]
    lines = [ctx.tn("themes.header", len(rows)), bullets(rows), ctx.t("themes.hint"), sources.line(ctx, cited)]
    return Reply("\n\n".join(lines))
