""""hvad betyder go-live?" / "forskel på udrulning og udrulningsforløb": the model's definitions; for a word the
model only uses ("hypercare"), where it uses it and, marked as ours, what it usually means."""
from __future__ import annotations

from content import Term
from dialogs import cards, sources
from dialogs.context import Ctx
from dialogs.markdown import esc
from dialogs.turn import Reply
from dialogs.understanding import Understanding


def _places(ctx: Ctx, term: Term) -> list[str]:
    """Where the model uses a word: "KLIK-opgaven «Etabler hyper-care/early-life-support»", "Fase 3: Ibrugtagning"."""
    used, content = term.used_in, ctx.content
    if used is None:
        return []
    # The model's example even where this project left it out: the model still uses the word there.
    model_tasks = {t.id: t for t in [*content.excluded_tasks, *content.tasks]}
    places = [ctx.t("glossary.in_task", task=model_tasks[t].title.get(ctx.lang)) for t in used.tasks if t in model_tasks]
    places += [ctx.t("glossary.in_theme", theme=content.theme(t).name.get(ctx.lang)) for t in used.themes]
    places += [ctx.t("glossary.in_phase", number=n, phase=content.phase(n).name.get(ctx.lang)) for n in used.phases]
    places += [f"«{content.model.parts[p].get(ctx.lang)}»" for p in used.parts]
    return places


def _lines(ctx: Ctx, term: Term) -> tuple[list[str], str]:
    """The entry as text paragraphs, and its source line (without markup)."""
    name = term.term.get(ctx.lang)
    if term.definition is not None:
        meta = [term.status.get(ctx.lang)] if term.status else [ctx.t("glossary.not_central")]
        meta.append(sources.plain(ctx, [term.source] if term.source else []))
        return [f"**{name}**: {term.definition.get(ctx.lang)}"], " · ".join(meta)
    lines = [ctx.t("glossary.used", term=name, places=ctx.all_of(_places(ctx, term)))]
    if term.explanation:
        lines.append(ctx.t("glossary.explanation", text=term.explanation.get(ctx.lang)))
    return lines, ctx.t("glossary.used.source")


def _definition(ctx: Ctx, term: Term) -> str:
    lines, source = _lines(ctx, term)
    return "\n\n".join([*lines, f"_{source}_"])


def _not_found(ctx: Ctx, u: Understanding, slot: str) -> Reply:
    raw = esc(str(u.slots.get(slot, "")))
    lookup = u.unresolved[slot]
    if lookup.candidates:
        names = [ctx.content.known_term(c).term.get(ctx.lang) for c in lookup.candidates[:3]]
        key = "glossary.ambiguous" if lookup.ambiguous else "glossary.unknown.suggest"
        return Reply(ctx.t(key, text=raw, options=ctx.either(names)))
    return Reply(ctx.t("glossary.unknown", text=raw))


async def define(ctx: Ctx, u: Understanding) -> Reply:
    if "term" in u.unresolved:
        return _not_found(ctx, u, "term")
    term = ctx.content.known_term(u.slots["term"])
    text = _definition(ctx, term)
    lines, source = _lines(ctx, term)
    body = [cards.title(term.term.get(ctx.lang))]
    if term.definition is not None:
        body.append(cards.text(term.definition.get(ctx.lang)))
    else:
        body += [cards.text(line) for line in lines]
    body.append(cards.subtle(source))
    actions = []
    if term.related:
        related = [ctx.content.known_term(r) for r in term.related]
        text += "\n\n" + ctx.t("glossary.related", terms=ctx.all_of([r.term.get(ctx.lang) for r in related]))
        code = await ctx.municipality_code() or ""
        actions = [cards.button(r.term.get(ctx.lang), "define", code, term=r.id) for r in related]
    return Reply(text, card=cards.card(body, text, actions))


async def compare(ctx: Ctx, u: Understanding) -> Reply:
    for slot in ("term", "term2"):
        if slot in u.unresolved:
            return _not_found(ctx, u, slot)
    first, second = ctx.content.known_term(u.slots["term"]), ctx.content.known_term(u.slots["term2"])
    if first.id == second.id:
        return Reply(_definition(ctx, first))
    # "ifølge modellen" only when the model defines both; a word it only uses has our explanation at most.
    key = "glossary.compare" if first.definition and second.definition else "glossary.compare.words"
    header = ctx.t(key, first=first.term.get(ctx.lang), second=second.term.get(ctx.lang))
    return Reply("\n\n".join([header, _definition(ctx, first), _definition(ctx, second)]))
