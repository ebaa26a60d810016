"""Whose words a reply quotes: the model's (and where in it), the KOMBIT project's, our draft, or the
municipality's own. Every reply that shows content ends with this line, so nobody takes a draft for KOMBIT's."""
from __future__ import annotations

from collections.abc import Iterable

from content import Source, Task
from dialogs import cards
from dialogs.context import Ctx


def where(ctx: Ctx, source: Source) -> str:
    """The source alone: "Implementeringsmodellen 2.0 – faseoversigten", "Udkast – ikke KOMBITs tekst"."""
    part = source.part.get(ctx.lang) if source.part else ""
    if source.kind == "model":
        return ctx.t("source.model", part=part)
    if source.kind == "project":
        project = ctx.content.project.name.get(ctx.lang)
        return ctx.t("source.project.part", project=project, part=part) if part else ctx.t("source.project", project=project)
    return ctx.t("source.draft" if source.kind == "draft" else "source.local")


def line(ctx: Ctx, sources: Iterable[Source]) -> str:
    """The sources once each, in the order met, as one italic line for the text reply."""
    return f"_{plain(ctx, sources)}_"


def plain(ctx: Ctx, sources: Iterable[Source]) -> str:
    """"Kilde: Implementeringsmodellen 2.0 – Temaer (1/2); Centrale begreber · Udkast – ikke KOMBITs tekst"."""
    sources = list(sources)
    parts = list(dict.fromkeys(s.part.get(ctx.lang) for s in sources if s.kind == "model" and s.part))
    cited = [ctx.t("source.model", part="; ".join(parts))] if parts else []
    cited += [where(ctx, s) for s in sources if s.kind == "project"]
    out = [ctx.t("source.label", source=" · ".join(dict.fromkeys(cited)))] if cited else []
    out += [where(ctx, s) for s in sources if s.kind in ("draft", "local")]
    return " · ".join(dict.fromkeys(out))


def block(ctx: Ctx, sources: Iterable[Source]) -> cards.Element:
    """The same line for a card."""
    return cards.subtle(plain(ctx, sources))


def of_titles(tasks: Iterable[Task]) -> list[Source]:
    """Where a list of tasks' titles come from (the model's examples, the project's, the municipality's own)."""
    return [t.source for t in tasks if t.source]
