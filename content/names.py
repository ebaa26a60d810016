"""How names compare, shared by content validation and the conversation core's lookups."""
from __future__ import annotations

import re
import unicodedata

# Danish letters folded to the ASCII spellings people type without a Danish keyboard, so that
# "Århus", "Aarhus", "naeste" and "næste" meet in the middle. Both templates and input are folded.
_FOLD = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "ä": "ae", "ö": "oe", "ü": "u", "é": "e", "è": "e"})
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def fold(text: str) -> str:
    """Lower-case, NFC, Danish letters to ASCII digraphs."""
    if text.isascii():  # most words and messages: nothing to normalise or translate
        return text.lower()
    return unicodedata.normalize("NFC", text).lower().translate(_FOLD)


def key(text: str) -> str:
    """A name's matching key: folded with every space, hyphen and dot gone ("Høje-Taastrup" == "hoeje taastrup")."""
    return _NOT_ALNUM.sub("", fold(text))
