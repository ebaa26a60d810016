"""Greeting, "hjælp", and the answer to anything not understood: never silence, never a random example.

"hjælp" lists what content/intents.yaml marks `help: true` (consultants also see theirs), each with the way
to say it (catalog: help.what.<intent>, say.<intent>). A message not understood gets the two or three
likeliest readings, built from what the message named ("vis «Planlæg uddannelse»"), as buttons.
"""
from __future__ import annotations

from typing import Any, get_args

from content.schema import HelpSection
from dialogs import cards
from dialogs.context import Ctx
from dialogs.turn import Reply
from dialogs.understanding import Understanding

_FALLBACK = ("next", "status", "help")  # offered when nothing in the message points anywhere


async def greet(ctx: Ctx) -> Reply:
    code = await ctx.municipality_code()
    key = "greet.registered" if code else "greet.body"
    return Reply(ctx.t(key, name=ctx.municipality_name(code) if code else ""))


SECTIONS = get_args(HelpSection)


async def handle(ctx: Ctx, u: Understanding) -> Reply:
    """Everything one can do, by heading, as text and as a card; consultants also see their own section.
    A read-only line has a button that asks it; a change is shown with its wording only (it needs a name)."""
    header = ctx.t("help.header")
    lines, body = [header], [cards.title(header)]
    code = await ctx.municipality_code() or ""
    for section in SECTIONS:
        specs = [(name, spec) for name, spec in ctx.content.intents.items()
                 if spec.help == section and (ctx.consultant or not spec.consultant)]
        if not specs:
            continue
        heading = ctx.t(f"help.section.{section}")
        rows = [f"- {ctx.t(f'help.what.{name}')}: «{ctx.t(f'say.{name}')}»" for name, _ in specs]
        lines.append(f"**{heading}**\n" + "\n".join(rows))
        body.append(cards.text(heading, weight="Bolder", spacing="Medium"))
        for name, spec in specs:
            entry = f"{ctx.t(f'help.what.{name}')}: «{ctx.t(f'say.{name}')}»"
            if spec.changes:
                body.append(cards.text(entry, spacing="Small"))
            else:
                say = ctx.t(f"say.{name}")
                body.append(cards.row(ctx.t(f"help.what.{name}"), cards.button(say, "say", code, say=say)))
    lines.append(ctx.t("help.footer"))
    body.append(cards.subtle(ctx.t("help.footer")))
    text = "\n\n".join(lines)
    return Reply(text, card=cards.card(body, text))


def _suggestion(ctx: Ctx, intent: str, slots: dict[str, Any]) -> tuple[str, bool]:
    """How to say `intent`, with the task, phase or term the message named when the intent takes it; and
    whether the words carry what the message named (else they are the intent's general example)."""
    values = {}
    if isinstance(slots.get("task"), str) and (task := ctx.content.task(slots["task"])):
        values["task"] = task.title.get(ctx.lang)
    if isinstance(slots.get("phase"), int):
        values["phase"] = f"{slots['phase']} {ctx.content.phase(slots['phase']).name.get(ctx.lang)}"
    if isinstance(slots.get("term"), str) and (term := ctx.content.term(slots["term"])):
        values["term"] = term.term.get(ctx.lang)
    if isinstance(slots.get("theme"), str):
        values["theme"] = ctx.content.theme(slots["theme"]).name.get(ctx.lang)
    key = f"say.{intent}.with"
    catalogs = ctx.services.catalogs
    if values and catalogs.has(key) and catalogs.placeholders(ctx.lang, key) <= set(values):
        return ctx.t(f"say.{intent}.with", task=values.get("task", ""), phase=values.get("phase", ""),
                     term=values.get("term", ""), theme=values.get("theme", "")), True
    return ctx.t(f"say.{intent}"), False


async def unknown(ctx: Ctx, u: Understanding) -> Reply:
    if not u.text:
        return Reply(ctx.t("unknown.empty"))
    offers: list[str] = []
    for intent, slots in u.alternatives:
        spec = ctx.content.intents.get(intent)
        if spec is None or (spec.consultant and not ctx.consultant) or intent in ("yes", "no", "gate_check", "smalltalk"):
            continue
        offer, named = _suggestion(ctx, intent, slots)
        if spec.changes and not named:
            continue  # a button that changes something the message did not name ("… is done") is a guess too far
        offers.append(offer)
    for intent in _FALLBACK:
        if len(offers) >= 3:
            break
        offers.append(ctx.t(f"say.{intent}"))
    offers = list(dict.fromkeys(offers))[:3]
    text = ctx.t("unknown.body", options=ctx.either(offers))
    code = await ctx.municipality_code() or ""
    buttons = [cards.button(offer, "say", code, say=offer) for offer in offers]
    return Reply(text, card=cards.card([cards.text(ctx.t("unknown.card"))], text, buttons))
