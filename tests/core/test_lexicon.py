"""The lexicon's shortcut (reading wordfreq's data file without importing wordfreq) gives exactly what
wordfreq's own API gives, for both languages."""
from __future__ import annotations

import pytest

from dialogs.understanding.lexicon import LANGUAGES, _from_pack, frequencies


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_shortcut_reads_what_wordfreq_reads(lang):
    shortcut = _from_pack(lang)
    assert shortcut is not None, "wordfreq's data file is not where or what the shortcut expects"
    plain = frequencies(lang)
    assert len(plain) > 20_000
    assert shortcut == plain
