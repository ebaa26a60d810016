"""Text normalisation shared by understanding and name matching."""
from __future__ import annotations

import re

from content.names import fold as fold  # re-exported: dialogs fold text as names are folded

_MENTION = re.compile(r"<at>(.*?)</at>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]{0,200}>")
_NOISE = re.compile(r"[\"'`«»“”„‘’´,;:!?()\[\]{}*_~|]")
_NOISE_BUT_CLAUSES = re.compile(r"[\"'`«»“”„‘’´()\[\]{}*_~|]")  # keeps , ; : ! ? where clauses end
_EDGE_PUNCT = re.compile(r"^[\s.,;:!?¿¡…\-–—]+|[\s.,;:!?…\-–—]+$")
_SPACE = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")  # after folding

# Understanding looks at no more than this; a 20 kB paste is not a command.
MAX_UTTERANCE = 300


def clean(text: str, people: frozenset[str] = frozenset(), clauses: bool = False) -> str:
    """What the user said, without quotes, control characters and edge punctuation.

    A Teams mention of a person in `people` keeps its name ("tildel X til <at>Lars</at>"); any other
    mention is the bot being addressed and goes. `clauses`: keep the marks that end a clause (, ; : ! ?)."""
    text = (text or "")[: MAX_UTTERANCE * 4]  # cut first: the patterns below must never see a 256 kB paste
    text = _MENTION.sub(lambda m: f" {m[1]} " if m[1].strip() in people else " ", text)
    text = _TAGS.sub(" ", text)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = (_NOISE_BUT_CLAUSES if clauses else _NOISE).sub(" ", text)
    text = _SPACE.sub(" ", text).strip()
    return _EDGE_PUNCT.sub("", text)[:MAX_UTTERANCE]


def words(text: str) -> list[str]:
    return [w for w in _NOT_ALNUM.split(fold(text)) if w]


def as_typed(original: str, folded_part: str) -> str:
    """The stretch of `original` that folds to `folded_part`, so replies echo "Atlantis", not "atlantis".

    Punctuation is skipped on both sides: the matcher drops the "." of "32. Marts 2027", the echo keeps it."""
    kept, origin = [], []
    for index, ch in enumerate(original):
        for out in fold(ch):
            if out.isalnum():
                kept.append(out)
                origin.append(index)
    wanted = "".join(ch for ch in folded_part if ch.isalnum())
    start = "".join(kept).find(wanted) if wanted else -1
    if start < 0:
        return folded_part
    return original[origin[start]: origin[start + len(wanted) - 1] + 1]


def without_mentions(text: str) -> str:
    """The message as typed, punctuation and all, minus Teams mention markup: for free-text notes."""
    return " ".join(_MENTION.sub(" ", (text or "")[: MAX_UTTERANCE * 4]).split())
