""""hvad betyder go-live?" / "forskel på udrulning og udrulningsforløb": definitions from the model."""
from __future__ import annotations

from content import Term
from dialogs import cards
from dialogs.context import Ctx
from dialogs.markdown import esc
from dialogs.turn import Reply
from dialogs.understanding import Understanding


def _definition(ctx: Ctx, term: Term) -> str:
    lines = [f"**{term.term.get(ctx.lang)}**: {term.definition.get(ctx.lang)}"]
    meta = [term.status.get(ctx.lang)] if term.status else [ctx.t("glossary.not_central")]
    meta.append(f"{ctx.t('word.source')}: {term.source.get(ctx.lang)}")
    lines.append("_" + " · ".join(meta) + "_")
    return "\n\n".join(lines)


def _not_found(ctx: Ctx, u: Understanding, slot: str) -> Reply:
    raw = esc(str(u.slots.get(slot, "")))
    lookup = u.unresolved[slot]
    if lookup.candidates:
        names = [ctx.content.term(c).term.get(ctx.lang) for c in lookup.candidates[:3]]
        key = "glossary.ambiguous" if lookup.ambiguous else "glossary.unknown.suggest"
        return Reply(ctx.t(key, text=raw, options=ctx.either(names)))
    return Reply(ctx.t("glossary.unknown", text=raw))


async def define(ctx: Ctx, u: Understanding) -> Reply:
    if "term" in u.unresolved:
        return _not_found(ctx, u, "term")
    term = ctx.content.term(u.slots["term"])
    text = _definition(ctx, term)
    meta = term.status.get(ctx.lang) if term.status else ctx.t("glossary.not_central")
    body = [cards.title(term.term.get(ctx.lang)), cards.text(term.definition.get(ctx.lang)),
            cards.subtle(f"{meta} · {ctx.t('word.source')}: {term.source.get(ctx.lang)}")]
    actions = []
    if term.related:
        related = [ctx.content.term(r) for r in term.related]
        text += "\n\n" + ctx.t("glossary.related", terms=ctx.all_of([r.term.get(ctx.lang) for r in related]))
        code = await ctx.municipality_code() or ""
        actions = [cards.button(r.term.get(ctx.lang), "define", code, term=r.id) for r in related]
    return Reply(text, card=cards.card(body, text, actions))


async def compare(ctx: Ctx, u: Understanding) -> Reply:
    for slot in ("term", "term2"):
        if slot in u.unresolved:
            return _not_found(ctx, u, slot)
    first, second = ctx.content.term(u.slots["term"]), ctx.content.term(u.slots["term2"])
    if first.id == second.id:
        return Reply(_definition(ctx, first))
    header = ctx.t("glossary.compare", first=first.term.get(ctx.lang), second=second.term.get(ctx.lang))
    return Reply("\n\n".join([header, _definition(ctx, first), _definition(ctx, second)]))
