"""How common a word is in Danish and in English, from wordfreq's word lists (folded as input is).

Two uses: a word people commonly write ("sammen", "kursus") is never "corrected" into a name or a
template word it happens to be one letter away from; and which language a message is in.

Speed-only code: importing wordfreq costs about as much as the rest of start-up's imports together (it
loads langcodes, ftfy and regex for tokenising, which this needs none of). So the lists are read from
wordfreq's own data files (its documented "cBpack" format: gzip, msgpack, a header, then one list of words
per centibel of frequency), and only where that fails through wordfreq's API: `frequencies` is the meaning,
`_from_pack` the shortcut, and tests/core/test_lexicon.py proves them equal.
"""
from __future__ import annotations

import gzip
import importlib.util
import math
from pathlib import Path

import msgpack

from dialogs.text import fold

LANGUAGES = ("da", "en")
_RARE = 1e-9  # the frequency of a word not in a list: Zipf 0
_LIST = "small"  # wordfreq's list of the words above about one per million: enough to tell words from typos


def frequencies(lang: str) -> dict[str, float]:
    """word -> frequency, through wordfreq's API (the plain way)."""
    from wordfreq import get_frequency_dict

    return get_frequency_dict(lang, wordlist=_LIST)


def _from_pack(lang: str) -> dict[str, float] | None:
    """The same from wordfreq's data file, without importing wordfreq; None when the file is not as expected."""
    spec = importlib.util.find_spec("wordfreq")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"{_LIST}_{lang}.msgpack.gz"
    try:
        with gzip.open(path, "rb") as fh:
            data = msgpack.load(fh, raw=False)
    except (OSError, ValueError, msgpack.UnpackException):
        return None
    header = data[0] if data else None
    if not isinstance(header, dict) or header.get("format") != "cB" or header.get("version") != 1:
        return None
    out: dict[str, float] = {}
    for index, bucket in enumerate(data[1:]):
        frequency = 10 ** (-index / 100)  # wordfreq's cB_to_freq
        for word in bucket:
            out[word] = frequency
    return out


def _folded(lang: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for word, frequency in (_from_pack(lang) or frequencies(lang)).items():
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
