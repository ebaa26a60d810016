"""How common a word is in Danish and in English, from wordfreq's word lists (folded as input is).

Two uses: a word people commonly write ("sammen", "kursus") is never "corrected" into a name or a
template word it happens to be one letter away from; and which language a message is in.
"""
from __future__ import annotations

import math

from wordfreq import get_frequency_dict

from dialogs.text import fold

LANGUAGES = ("da", "en")
_RARE = 1e-9  # the frequency of a word not in a list: Zipf 0


def _folded(lang: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for word, frequency in get_frequency_dict(lang, wordlist="small").items():
        key = fold(word)
        if key.isalpha():
            out[key] = max(out.get(key, 0.0), frequency)
    return out


class Lexicon:
    def __init__(self) -> None:
        self._frequency = {lang: _folded(lang) for lang in LANGUAGES}
        self._common = frozenset().union(*self._frequency.values())

    def common(self, word: str) -> bool:
        """A word of either language's list: a real word, not a misspelling."""
        return word in self._common

    def zipf(self, word: str, lang: str) -> float:
        """log10 of the word's frequency per billion words: 7 for "og", 3 for a rare word, 0 when unknown."""
        return math.log10(self._frequency[lang].get(word, _RARE)) + 9
