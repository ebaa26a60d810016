""""hvad er implementeringsmodellen?", "hvem gør hvad?", "hvordan bruger projektet modellen?": the model
itself, the roles it gives, and how this KOMBIT project operationalises it (project.yaml)."""
from __future__ import annotations

from dialogs import cards, sources
from dialogs.context import Ctx
from dialogs.markdown import bullets, esc
from dialogs.turn import Reply
from dialogs.understanding import Understanding


async def handle(ctx: Ctx, u: Understanding) -> Reply:
    """What the model is, why KOMBIT uses it, and whom it is written for."""
    model = ctx.content.model
    lines = [f"**{model.name.get(ctx.lang)}**", model.what.get(ctx.lang), model.why.get(ctx.lang),
             model.audience.get(ctx.lang), ctx.t("model.hint"), sources.line(ctx, [model.source])]
    return Reply("\n\n".join(lines))


async def roles(ctx: Ctx, u: Understanding) -> Reply:
    """Who does what: the municipality, the supplier, KOMBIT, as the model puts it."""
    model = ctx.content.model
    header = ctx.t("roles.header")
    lines, body = [header], [cards.title(header)]
    for role in model.roles:
        who = role.who.get(ctx.lang)
        lines.append(f"**{who}**: {role.does.get(ctx.lang)}")
        body += [cards.text(who, weight="Bolder", spacing="Medium"), cards.text(role.does.get(ctx.lang))]
    lines.append(ctx.t("roles.hint"))
    cited = [r.source for r in model.roles]
    lines.append(sources.line(ctx, cited))
    body.append(sources.block(ctx, cited))
    text = "\n\n".join(lines)
    return Reply(text, card=cards.card(body, text))


async def project(ctx: Ctx, u: Understanding) -> Reply:
    """The project's operationalisation: phase lengths, milestones by phase, tasks left out or added, deviations."""
    project = ctx.content.project
    lines = [ctx.t("project.header", project=project.name.get(ctx.lang))]
    weeks = [(n, w) for n, w in sorted(project.phase_durations_weeks.items()) if w]
    if weeks:
        lines.append(ctx.t("project.durations") + "\n" + bullets(
            [ctx.tn("project.duration", w, number=n, phase=ctx.content.phase(n).name.get(ctx.lang)) for n, w in weeks]))
    else:
        lines.append(ctx.t("project.durations.none"))
    due = [ctx.t("project.phase_due", number=p, phase=ctx.content.phase(p).name.get(ctx.lang),
                 milestone=ctx.t(f"milestone.in_text.{m}")) for m, p in project.phase_due.items()]
    lines.append(ctx.t("project.phase_due.header") + "\n" + bullets(due))
    excluded = [t.title.get(ctx.lang) for t in ctx.content.excluded_tasks]
    added = [t.title.get(ctx.lang) for t in project.add_tasks]
    lines.append(ctx.tn("project.excluded", len(excluded), tasks=ctx.all_of([f"«{t}»" for t in excluded])))
    lines.append(ctx.tn("project.added", len(added), tasks=ctx.all_of([f"«{t}»" for t in added])))
    if project.deviations:
        rows = [ctx.t("project.deviation", what=esc(d.what), why=esc(d.why), by=esc(d.approved_by),
                      on=esc(d.approved_on or "–")) for d in project.deviations]
        lines.append(ctx.t("project.deviations") + "\n" + bullets(rows))
    else:
        lines.append(ctx.t("project.deviations.none"))
    lines.append(sources.line(ctx, [project.source]))
    return Reply("\n\n".join(lines))
