"""Which language a message is written in: the words weighed by how much more common each is in Danish
than in English (wordfreq's frequencies). The caller leaves out the names the message holds: a Danish task
title in an English sentence says nothing about the sentence's language.
"""
from __future__ import annotations

from collections.abc import Sequence

from dialogs.understanding.lexicon import Lexicon

_CAP = 3.0  # one word counts at most this much (Zipf points) towards a language
_CLEAR = 2.5  # the sum a message needs to be clearly one language


class LanguageGuess:
    def __init__(self, lexicon: Lexicon):
        self._lexicon = lexicon

    def score(self, tokens: Sequence[str]) -> float:
        """Positive: Danish; negative: English."""
        total = 0.0
        for token in tokens:
            if token.isdigit():
                continue
            difference = self._lexicon.zipf(token, "da") - self._lexicon.zipf(token, "en")
            total += max(-_CAP, min(_CAP, difference))
        return total

    def of(self, tokens: Sequence[str]) -> str | None:
        """"da" or "en" when the message clearly is one, else None."""
        score = self.score(tokens)
        if score >= _CLEAR:
            return "da"
        if score <= -_CLEAR:
            return "en"
        return None
