"""Find one thing by a name a person typed: exact key, Danish inflection, typo, or a unique part.

One index serves municipalities, phases, themes, glossary terms and tasks, so they all tolerate the
same things ("Århus"/"Aarhus", "Høje Taastrup", "udrulningsforløbet", "projektleeder") and all refuse
to guess between two close candidates.
"""
from __future__ import annotations

import bisect
import itertools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from content import Content
from content.names import key
from dialogs.text import fold, words
from dialogs.understanding.lexicon import Lexicon

# Definite/plural endings tried when the bare form is not known: "forløbet", "faseovergangene", "bølger".
_SUFFIXES = ("erne", "ene", "en", "et", "er", "e", "s", "n")
_TYPO_SCORE = 85  # fuzz.ratio on keys; one or two wrong letters in a word of 8+ stays above it
_CLOSE = 4  # two candidates this close on score are a tie: ask, don't guess
_DIGITS = re.compile(r"\d+")
_MIN_PART = 4  # a part shorter than this ("it") matches too much to mean anything


@dataclass(frozen=True)
class Lookup:
    """`id` when exactly one thing was meant; otherwise `candidates`: a tie (ask which) or the closest guesses."""

    id: str | None = None
    candidates: tuple[str, ...] = ()
    tie: bool = False  # the candidates match equally well; False means they are only suggestions
    exact: bool = True  # `id` is the name as written (or inflected); False: read from a typo or a part of it

    @property
    def ambiguous(self) -> bool:
        return self.id is None and self.tie and len(self.candidates) > 1


class _Texts:
    """Strings searched for a part all at once, as one text, instead of one by one: which of them contain it."""

    def __init__(self, texts: list[tuple[str, str]]):  # (text, id); no text holds a newline
        self._joined = "\n".join(text for text, _ in texts)
        self._starts = list(itertools.accumulate((len(text) + 1 for text, _ in texts[:-1]), initial=0))
        self._ids = [item_id for _, item_id in texts]

    def ids_containing(self, part: str) -> list[str]:
        """Ids of the texts containing `part` (which holds no newline), in the texts' order, each once."""
        found: dict[str, None] = {}
        at = self._joined.find(part)
        while at >= 0:
            n = bisect.bisect_right(self._starts, at) - 1
            found[self._ids[n]] = None
            at = self._joined.find(part, self._starts[n + 1]) if n + 1 < len(self._starts) else -1
        return list(found)


class NameIndex:
    def __init__(self, names: Mapping[str, Iterable[str]], suggest_from: float = 0.0, by_part: bool = True):
        """`suggest_from`: the least score (rapidfuzz WRatio, 0-100) a name needs to be offered as "did you mean".
        `by_part`: a name's whole words may pick it ("projektleder" is "Udpeg projektleder"); off for glossary
        terms, where "data" is not "databehandleraftale" nor "management" "top management"."""
        self._suggest_from = suggest_from
        self._by_part = by_part
        self._id_of: dict[str, str] = {}
        self._word_runs: list[tuple[str, str]] = []  # (" word word ", id) for whole-word containment
        for item_id, item_names in names.items():
            for name in item_names:
                k = key(name)
                if k:
                    # First writer wins: content validation refuses a task name shared by two tasks (same key).
                    self._id_of.setdefault(k, item_id)
                    self._word_runs.append((f" {' '.join(words(name))} ", item_id))
        self._keys = list(self._id_of)
        self._digits_of = {k: _DIGITS.findall(k) for k in self._keys}
        self._runs = _Texts(self._word_runs)
        self._key_texts = _Texts([(k, self._id_of[k]) for k in self._keys])

    def lookup(self, query: str, suggest: bool = True, exact: bool = False) -> Lookup:
        """`suggest=False`: when nothing matches, skip the closest guesses (a slow fuzzy pass over every name),
        for callers that only need to know whether the query found something. `exact`: the name as written (or
        inflected) only, no typo or part of a name."""
        k = key(query)
        if not k:
            return Lookup()
        for candidate in (k, *(k[: -len(s)] for s in _SUFFIXES if k.endswith(s) and len(k) - len(s) >= 3)):
            if candidate in self._id_of:
                return Lookup(self._id_of[candidate])
        if exact:
            return Lookup()
        # Names scoring below _TYPO_SCORE - _CLOSE can neither be the typo nor tie with it: not scored at all.
        scored = self._best_per_id(k, fuzz.ratio, _TYPO_SCORE - _CLOSE, typos_only=True)
        if scored and scored[0][1] >= _TYPO_SCORE:
            ties = [i for i, s in scored if s >= scored[0][1] - _CLOSE]
            return Lookup(ties[0], exact=False) if len(ties) == 1 else Lookup(None, tuple(ties[:5]), tie=True)
        if len(k) >= _MIN_PART and self._by_part:
            # Whole words of a name ("projektleder" in "Udpeg projektleder") may pick it; a bare part of a word
            # ("appoint as" in "appoint a super user") may only make a tie to ask about, never a match.
            run = f" {' '.join(words(query))} "
            whole = self._runs.ids_containing(run)
            if len(whole) == 1:
                return Lookup(whole[0], exact=False)
            parts = whole or self._key_texts.ids_containing(k)
            if len(parts) > 1:
                return Lookup(None, tuple(parts[:8]), tie=True)
            if parts:
                return Lookup(None, tuple(parts))
        return Lookup(None, tuple(self.suggest(query)) if suggest else ())

    def suggest(self, query: str, n: int = 3) -> list[str]:
        k = key(query)
        return [i for i, _ in self._best_per_id(k, fuzz.WRatio, self._suggest_from or None)[:n]] if k else []

    def _best_per_id(self, k: str, scorer: Callable[..., float], cutoff: float | None = None,
                     typos_only: bool = False) -> list[tuple[str, float]]:
        """`typos_only`: a name that is the query plus a whole word or more, before or after ("implementeringsmodellen"
        and "implementeringsmodellens temaer", "management" and "top management") is not a misspelling of it."""
        digits = _DIGITS.findall(k)
        best: dict[str, float] = {}
        for name, score, _ in process.extract(k, self._keys, scorer=scorer, limit=20, score_cutoff=cutoff):
            if typos_only and abs(len(name) - len(k)) > 2 and (name.startswith(k) or k.startswith(name)
                                                               or name.endswith(k) or k.endswith(name)):
                continue
            if self._digits_of[name] != digits:
                continue  # "fase 2" is not a typo of "fase", nor "fase 3" of "fase 2"
            item_id = self._id_of[name]
            best[item_id] = max(best.get(item_id, 0.0), score)
        return sorted(best.items(), key=lambda kv: -kv[1])


# -- the content's names ---------------------------------------------------------------------------------------
_EVERYDAY_WORD = 4.5  # Zipf frequency from which a word is too common to stand for a municipality alone


def _municipality_parts(content: Content, lexicon: Lexicon) -> dict[str, list[str]]:
    """A part of a two-part name that no other municipality has and that is no everyday word: "Ringkøbing" and
    "Skjern", "Faaborg"; not "Høje" (Høje-Taastrup)."""
    parts: dict[str, list[str]] = defaultdict(list)
    for m in content.municipalities:
        for part in re.split(r"[- ]+", m.name):
            if len(part) >= 4 and part != m.name:
                parts[part.lower()].append(m.code)
    names_of = {m.name.lower() for m in content.municipalities}
    out: dict[str, list[str]] = defaultdict(list)
    for part, codes in parts.items():
        if len(codes) == 1 and part not in names_of and lexicon.zipf(fold(part), "da") < _EVERYDAY_WORD:
            out[codes[0]].append(part)
    return out


def content_names(content: Content, lexicon: Lexicon) -> dict[str, dict[str, list[str]]]:
    """kind -> id -> every name it goes by: what both the templates' lookups and the tagger search."""
    parts = _municipality_parts(content, lexicon)
    return {
        "municipality": {m.code: [m.name, f"{m.name} kommune", f"{m.name}s kommune", *m.aliases, *parts.get(m.code, [])]
                         for m in content.municipalities},
        "phase": {str(p.number): [p.id, p.name.da, p.name.en, f"fase {p.number}", f"phase {p.number}",
                                  *p.aliases.all()] for p in content.phases},
        "theme": {t.id: [t.id, t.name.da, t.name.en, *t.aliases.all()] for t in content.themes},
        "term": {t.id: [t.id, t.term.da, t.term.en, *t.synonyms.all()] for t in content.terms},
        "task": {t.id: [t.title.da, t.title.en, *t.aliases.all()] for t in content.tasks},
        # A wave by its name, its number, or its place ("anden bølge", "the second wave").
        "wave": {w.id: [w.id, w.name.da, w.name.en, f"bølge {i}", f"wave {i}", f"{i}. bølge",
                        *(f"{o} {noun}" for lang in sorted(content.words) for o in content.words[lang].ordinals.get(i, ())
                          for noun in ("bølge", "wave"))]
                 for i, w in enumerate(content.project.waves, start=1)},
    }
