"""What understanding hands the dialogs (`Understanding`), and what its parts hand each other."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from dialogs.understanding.names import Lookup
from dialogs.understanding.utterance import Utterance

# Wildcards kept as the user's own text: a date to parse, criterion numbers with a note, a name, a title.
FREE_TEXT_SLOTS = frozenset({"date", "numbers", "person", "title"})
# Slots whose text is looked up among the content's names; the others come from fixed lists or are free text.
LOOKUP_SLOTS = ("municipality", "phase", "theme", "term", "term2", "task", "wave")


@dataclass(frozen=True)
class Understanding:
    intent: str
    slots: dict[str, Any] = field(default_factory=dict)  # resolved values; raw text where unresolved
    unresolved: dict[str, Lookup] = field(default_factory=dict)  # slot -> candidates/suggestions
    text: str = ""  # the cleaned utterance
    confirm: bool = False  # a change the bot asks about before making it
    language: str | None = None  # the message's language, when it is clear
    why: str = ""  # how it was decided, for the log
    doubts: tuple[str, ...] = ()  # why a change read from it should be asked about first
    by_classifier: bool = False  # read by the classifier, not a template or an example: a change needs a cue word
    # The next likeliest readings, (intent, slots), for a reply that offers them ("Mente du …?").
    alternatives: tuple[tuple[str, dict[str, Any]], ...] = ()


@dataclass(frozen=True)
class TemplateParse:
    """One template's reading of the text, before its slots are looked up."""
    intent: str
    raw: dict[str, str]  # slot -> its text (wildcards) or list value
    literal: int  # characters of the text not taken by name/free-text wildcards: the template's own words
    template: str | None  # the template's text, as hassil keeps it


def body_text(u: Utterance) -> str:
    """The folded text of the body (fillers cut out), punctuation inside kept for dates and titles."""
    if not u.body:
        return ""
    parts, run_start, previous = [], u.body[0], u.body[0]
    for index in itertools.chain(u.body[1:], [None]):
        if index is not None and index == previous + 1:
            previous = index
            continue
        parts.append(u.folded[u.places[run_start][0]:u.places[previous][1]])
        if index is not None:
            run_start = previous = index
    return " ".join(parts)
