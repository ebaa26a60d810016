"""Adaptive Cards (schema 1.5, what Teams renders) built from the same data as the text replies.

Cards are plain dicts: no SDK here. Every card carries its text twin as `fallbackText`, which clients
without card support show instead. Buttons are Action.Submit whose data says what to do, for which
municipality, from which card version, so a press on an old or foreign card is recognised.
"""
from __future__ import annotations

from typing import Any

CARD_VERSION = 1  # bump when button data changes shape; older cards then get a polite "ask again"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"

Element = dict[str, Any]  # a card, or one of its elements or actions: JSON as the schema says


def card(body: list[Element], fallback: str, actions: list[Element] | None = None) -> Element:
    out: Element = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": "1.5", "body": body, "fallbackText": fallback}
    if actions:
        out["actions"] = actions
    return out


def text(value: str, **style: object) -> Element:
    return {"type": "TextBlock", "text": value, "wrap": True, **style}


def title(value: str) -> Element:
    return text(value, size="Medium", weight="Bolder")


def subtle(value: str) -> Element:
    return text(value, isSubtle=True, size="Small")


def facts(pairs: list[tuple[str, str]]) -> Element:
    return {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in pairs]}


def button(label: str, action: str, code: str, **data: object) -> Element:
    return {"type": "Action.Submit", "title": label, "data": {"v": CARD_VERSION, "a": action, "m": code, **data}}


def row(label: str, action: Element) -> Element:
    """A line of text with its button at the right."""
    return {"type": "ColumnSet", "columns": [
        {"type": "Column", "width": "stretch", "verticalContentAlignment": "Center", "items": [text(label)]},
        {"type": "Column", "width": "auto", "items": [{"type": "ActionSet", "actions": [action]}]},
    ]}


def toggle(input_id: str, label: str, on: bool) -> Element:
    return {"type": "Input.Toggle", "id": input_id, "title": label, "value": "true" if on else "false",
            "valueOn": "true", "valueOff": "false", "wrap": True}


def note_input(input_id: str, placeholder: str) -> Element:
    return {"type": "Input.Text", "id": input_id, "placeholder": placeholder, "isMultiline": True, "maxLength": 500}


def open_url(label: str, url: str) -> Element:
    return {"type": "Action.OpenUrl", "title": label, "url": url}
