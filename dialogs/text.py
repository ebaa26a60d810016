"""Text normalisation shared by understanding and name matching."""
from __future__ import annotations

import re
import unicodedata

# Danish letters folded to the ASCII spellings people type without a Danish keyboard, so that
# "Århus", "Aarhus", "naeste" and "næste" meet in the middle. Both templates and input are folded.
_FOLD = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "ä": "ae", "ö": "oe", "ü": "u", "é": "e", "è": "e"})
_MENTION = re.compile(r"<at>(.*?)</at>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]{0,200}>")
_NOISE = re.compile(r"[\"'`«»“”„‘’´,;:!?()\[\]{}*_~|]")
_EDGE_PUNCT = re.compile(r"^[\s.,;:!?¿¡…\-–—]+|[\s.,;:!?…\-–—]+$")
_SPACE = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")

# Understanding looks at no more than this; a 20 kB paste is not a command.
MAX_UTTERANCE = 300


def fold(text: str) -> str:
    """Lower-case, NFC, Danish letters to ASCII digraphs."""
    return unicodedata.normalize("NFC", text).lower().translate(_FOLD)


def clean(text: str, people: frozenset[str] = frozenset()) -> str:
    """What the user said, without quotes, control characters and edge punctuation.

    A Teams mention of a person in `people` keeps its name ("tildel X til <at>Lars</at>"); any other
    mention is the bot being addressed and goes."""
    text = (text or "")[: MAX_UTTERANCE * 4]  # cut first: the patterns below must never see a 256 kB paste
    text = _MENTION.sub(lambda m: f" {m[1]} " if m[1].strip() in people else " ", text)
    text = _TAGS.sub(" ", text)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = _NOISE.sub(" ", text)
    text = _SPACE.sub(" ", text).strip()
    return _EDGE_PUNCT.sub("", text)[:MAX_UTTERANCE]


def key(text: str) -> str:
    """A name's matching key: folded with every space, hyphen and dot gone ("Høje-Taastrup" == "hoeje taastrup")."""
    return _NOT_ALNUM.sub("", fold(text))


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
