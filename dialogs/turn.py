"""What the core receives for one turn and what it answers. No Bot Framework types here."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dialogs.store import Actor


@dataclass(frozen=True)
class Conversation:
    id: str  # without a thread's ";messageid=…" suffix: a thread shares its channel's registration
    scope: str  # who shares a registration: "team:<team id>" in a team, else "conversation:<id>"
    kind: str  # "personal" | "groupChat" | "channel"
    tenant_id: str | None = None
    thread: str = ""  # the full id, thread included: numbered lists belong to the thread they were shown in


@dataclass(frozen=True)
class TurnInput:
    text: str
    user: Actor
    conversation: Conversation
    now: datetime  # UTC, injected so tests and commands can choose the time
    locale: str | None = None
    value: dict[str, Any] | None = None  # a card button's data (Action.Submit) with the card's inputs
    mentions: tuple[Actor, ...] = ()  # people @mentioned in the message (not the bot): for "tildel … til @Lars"
    user_ids: frozenset[str] = frozenset()  # every id Teams gave the sender (AAD object id, channel id)


@dataclass(frozen=True)
class Reply:
    """Markdown text as Teams renders it, and what the edge needs to know about the turn."""

    text: str  # the whole answer as Markdown: what text-only clients get, and every card's fallbackText
    card: dict[str, Any] | None = None  # an Adaptive Card that card-capable clients get instead of `text`
    note: str | None = None  # a short line sent with `card` (e.g. a button press's confirmation)
    replace_card: dict[str, Any] | None = None  # the pressed card, redrawn with the new state
    file: tuple[str, bytes] | None = None  # (file name, content) offered for download, e.g. the CSV export
    file_label: str = ""  # the download button's label, from the catalogs
    municipality: str | None = None  # the municipality this conversation is bound to, when known
    language: str = "da"  # the language the reply is in: proactive messages there use it too
    intent: str = ""  # what the turn was understood as (metrics, never the text)
    incident: str | None = None  # set when the bot failed: the id the user was given and the log has
