"""What a message names: tasks, phases, terms, themes, municipalities, waves, dates, numbers, people, and the
fixed values of words.yaml (milestones, aspects, languages, roles, references).

Names are found as runs of words whose letters, joined, are a name's key ("go live" and "go-live" are
"golive"), also with a Danish or English ending ("databehandleraftalen", "superbrugerne", "forankringsfasen").
A misspelt word is read as the known word one or two letters away, when exactly one is that close.

Tasks are also found by their words when no name is written out ("vi har allokeret folk til early life
support"): each task scores the words of the message it has among its names, a rare word counting more than a
common one (inverse document frequency over the tasks); the best task wins when it clearly leads.
"""
from __future__ import annotations

import functools
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein

from content.names import key
from dialogs.dates import find_date
from dialogs.text import words
from dialogs.understanding.lexicon import Lexicon
from dialogs.understanding.utterance import Utterance
from dialogs.understanding.words import Phrases, Words

# Endings tried when a run of words is not a name as it stands: definite and plural forms, genitive.
_ENDINGS = ("ernes", "erne", "enes", "ene", "ens", "ets", "nes", "en", "et", "er", "ne", "es", "e", "n", "s")
_MIN_STEM = 4  # "it" + "en" is not "iten"
_NAME_KINDS = ("task", "phase", "term", "theme", "municipality", "wave")
_RARE = 2.3  # a task found by its words needs a word this rare (inverse document frequency): ~4 tasks or fewer
_LEAD = 1.3  # ... and must score this many times the next task's score
_EVERYDAY = 5.5  # Zipf frequency above which a capitalised first word is a word, not a name ("Peter" is 5.1)
_PERSON = re.compile(r"(?<![\w@])@?([A-ZÆØÅ][a-zæøåéü]+(?:[ -][A-ZÆØÅ][a-zæøåéü]+)?)\b")


@dataclass(frozen=True)
class Found:
    kind: str  # a name kind, or milestone aspect language sort period role me task_ref phase_ref date number person
    value: Any  # the id (task, term, …), the phase's number, the fixed value, the number, or the text as typed
    start: int  # its words in the utterance: start..end-1
    end: int


@dataclass(frozen=True)
class TaskGuess:
    """Tasks found by their words: `id` when one clearly leads, else the tied `candidates`."""

    id: str | None
    candidates: tuple[str, ...] = ()
    scores: Mapping[str, float] = field(default_factory=dict, compare=False)
    places: frozenset[int] = frozenset()  # the message's words that point at the task(s) found

    def beats(self, named: str) -> bool:
        """Whether the words point at another task than the one named outright, and clearly: "allokeret folk til
        early life support" names "early life support" (hypercare) but is about allocating resources for it."""
        if not self.id:
            return False
        return self.id != named and self.scores[self.id] >= _LEAD * self.scores.get(named, 0.0)


@dataclass(frozen=True)
class Tagged:
    found: tuple[Found, ...]  # in the order of the message
    task_guess: TaskGuess | None  # tasks found by their words (None: no task word at all)
    words: tuple[str, ...]  # the message's words, misspellings corrected
    used_only: frozenset[int] = frozenset()  # places of words the model only uses ("superbrugerne"): tasks' words too

    def all(self, kind: str) -> list[Found]:
        return [f for f in self.found if f.kind == kind]

    def first(self, kind: str) -> Found | None:
        return next((f for f in self.found if f.kind == kind), None)

    def kinds_at(self, index: int) -> list[Found]:
        return [f for f in self.found if f.start <= index < f.end]

    @functools.cached_property
    def named(self) -> frozenset[int]:
        """The places of the words that are part of a name found."""
        return frozenset(i for f in self.found for i in range(f.start, f.end))


class _Spelling:
    """Corrects a misspelt word to the one known word closest to it, or leaves it.

    Only towards words of four letters or more that are not small words, and never to a word that is the same
    but for its ending ("sammen" is not a misspelt "samme"): that is another form of a word, not a typo."""

    def __init__(self, known: Iterable[str], small: Iterable[str], lexicon: Lexicon):
        self.known = frozenset(known)
        self._lexicon = lexicon
        self._by_length: dict[int, list[str]] = defaultdict(list)
        for word in self.known - set(small):
            if len(word) >= 4 and word.isalpha():
                self._by_length[len(word)].append(word)
        self.correct = functools.lru_cache(maxsize=8192)(self._correct)

    def _correct(self, word: str) -> str:
        if word in self.known or len(word) < 4 or not word.isalpha() or self._lexicon.common(word):
            return word
        allowed = 1 if len(word) <= 5 else 2  # edits, a swap of two letters counting as one
        pool = [w for size in range(len(word) - allowed, len(word) + allowed + 1) for w in self._by_length.get(size, ())]
        near = process.extract(word, pool, scorer=DamerauLevenshtein.distance, score_cutoff=allowed, limit=4)
        other = [(w, score) for w, score, _ in near if not (w.startswith(word) or word.startswith(w))]
        if not other:
            return word
        best = min(score for _, score in other)
        closest = [w for w, score in other if score == best]
        return closest[0] if len(closest) == 1 else word


class _TaskWords:
    """Each task's words (from all its names), weighted by how few tasks share them."""

    def __init__(self, names: Mapping[str, list[str]], stopwords: frozenset[str]):
        self._stop = stopwords
        self._tasks: dict[str, set[str]] = defaultdict(set)  # word -> tasks having it
        for task_id, task_names in names.items():
            for name in task_names:
                for word in words(name):
                    if len(word) >= 3 and word not in stopwords and not word.isdigit():
                        self._tasks[word].add(task_id)
        count = len(names) or 1
        self._weight = {word: math.log(1 + count / len(tasks)) for word, tasks in self._tasks.items()}
        self._by_prefix: dict[str, list[str]] = defaultdict(list)
        for word in self._tasks:
            if len(word) >= 5:
                self._by_prefix[word[:5]].append(word)

    def _matches(self, word: str) -> list[str]:
        if word in self._stop:
            return []
        return self._matches_of(word)

    def _matches_of(self, word: str) -> list[str]:
        """Known words this word is: the same; one starting the other ("allokeret"/"alloker", "uddannelsesplan"/
        "uddannelse"), both at least five letters and at most six apart (not a compound's first part); or the
        word without a verb's ending ("købt"/"køb", "mapping"/"map")."""
        found = [word] if word in self._tasks else []
        if len(word) >= 5:
            found += [w for w in self._by_prefix.get(word[:5], ()) if w != word and abs(len(w) - len(word)) <= 6
                      and (w.startswith(word) or word.startswith(w) or _same_root(w, word))]
        for stem in _stems(word):
            if stem in self._tasks and stem not in found:
                found.append(stem)
        return found

    def guess(self, message_words: Iterable[tuple[int, str]]) -> TaskGuess | None:
        """`message_words`: (place, word) of the words to weigh."""
        score: dict[str, float] = defaultdict(float)
        pointing: dict[str, set[int]] = defaultdict(set)  # task -> places of the words that point at it
        rare = False
        counted: set[tuple[str, str]] = set()
        for place, word in message_words:
            best: dict[str, float] = {}
            for known in self._matches(word):
                weight = self._weight[known]
                rare = rare or weight >= _RARE
                for task in self._tasks[known]:
                    best[task] = max(best.get(task, 0.0), weight)
            for task, weight in best.items():
                pointing[task].add(place)
                if (task, word) not in counted:  # a word said twice counts once
                    counted.add((task, word))
                    score[task] += weight
        if not score:
            return None
        ranked = sorted(score.items(), key=lambda kv: -kv[1])
        top = ranked[0][1]
        if not rare or top < _RARE:
            return TaskGuess(None, (), score)
        close = [task for task, s in ranked if s * _LEAD >= top]
        places = frozenset().union(*(pointing[task] for task in close))
        if len(close) == 1:
            return TaskGuess(close[0], (), score, places)
        return TaskGuess(None, tuple(close[:6]), score, places)


_VERB_ENDINGS = ("ede", "ing", "et", "ed", "te", "t")
_ROOT = 6  # letters two words share at the start to be forms of one verb: "kortlagt"/"kortlæg", "planlagt"/"planlæg"
_FORM = 3  # ... each with at most this many letters more: "projektet" and "projektejer" are two words


def _same_root(a: str, b: str) -> bool:
    return min(len(a), len(b)) > _ROOT and max(len(a), len(b)) <= _ROOT + _FORM and a[:_ROOT] == b[:_ROOT]


def _stems(word: str) -> list[str]:
    """A word without a verb's ending, for words found by their stem: "købt" -> "køb", "mapping" -> "map"."""
    stems = []
    for ending in _VERB_ENDINGS:
        stem = word[: -len(ending)]
        if word.endswith(ending) and len(stem) >= 3:
            stems.append(stem)
            if len(stem) >= 4 and stem[-1] == stem[-2]:  # "mapping" -> "mapp" -> "map"
                stems.append(stem[:-1])
    return stems


class Tagger:
    def __init__(self, names: Mapping[str, Mapping[str, list[str]]], words_: Words, known_words: Iterable[str],
                 lexicon: Lexicon, used_only: frozenset[str] = frozenset()):
        """`names`: kind -> id -> names (content); `known_words`: every word of the sentences and examples;
        `used_only`: terms that are words the model uses in task titles ("superbruger", "early life support")
        rather than defines: they still point at tasks by their words."""
        self._words = words_
        self._used_only = used_only
        self._keys: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        for kind, items in names.items():
            for item_id, item_names in items.items():
                for name in item_names:
                    self._add(key(name), kind, item_id)
                    if kind == "phase":  # "forankringsfasen", "opstartsfase"
                        for compound in words_.phase_compounds:
                            self._add(key(name) + compound, kind, item_id)
        for kind, groups in (("phase_ref", words_.phase_references), ("role", words_.roles),
                             ("model_part", words_.model_parts),
                             *((name, values) for name, values in words_.fixed.items())):
            for value, phrases in groups.items():
                for phrase in phrases.phrases:
                    self._add("".join(phrase), kind, value)
        for kind, phrases, value in (("task_ref", words_.task_references, "@ref"), ("me", words_.me, "@me"),
                                     ("model", words_.model_names, "model")):
            for phrase in phrases.phrases:
                self._add("".join(phrase), kind, value)
        for value, phrases in words_.directions.items():
            for phrase in phrases.phrases:
                self._add("".join(phrase), "direction", value)
        self._prefixes = {k[:i] for k in self._keys for i in range(1, len(k) + 1)}
        self._name_keys = {k for k, hits in self._keys.items() if any(kind in _NAME_KINDS for kind, _ in hits)}
        # Words that say how, not what, never point at a task ("hvilke" is in "Kortlæg hvilke snitflader …").
        grammar = [words_.question_words, words_.question_verbs, words_.negations, words_.hedges,
                   words_.task_references, words_.me, words_.fillers, words_.greetings, words_.requests]
        self._task_words = _TaskWords(names.get("task", {}),
                                      words_.stopwords | frozenset().union(*(p.vocabulary() for p in grammar)))
        name_words = {w for items in names.values() for item_names in items.values() for n in item_names for w in words(n)}
        self.known = frozenset(known_words) | name_words | words_.vocabulary()
        small = words_.stopwords | words_.task_references.vocabulary() | words_.me.vocabulary()
        self._spelling = _Spelling(self.known, small, lexicon)
        self._lexicon = lexicon
        self._max_words = max((len(words(n)) for items in names.values() for ns in items.values() for n in ns),
                              default=1) + 2

    def _add(self, k: str, kind: str, value: Any) -> None:
        if k and (kind, value) not in self._keys[k]:
            self._keys[k].append((kind, value))

    def correct(self, word: str) -> str:
        return self._spelling.correct(word)

    def _lookup(self, joined: str, last: str) -> list[tuple[str, Any]]:
        """`last`: the run's last word; an ending is part of it ("faserne"), never a word of its own ("faser er")."""
        hits = self._keys.get(joined)
        if hits:
            return hits
        for ending in _ENDINGS:  # an inflected name: only names, not the fixed words (listed with their forms)
            stem = joined[: -len(ending)]
            if joined.endswith(ending) and len(ending) < len(last) and len(stem) >= _MIN_STEM and stem in self._name_keys:
                return [(kind, value) for kind, value in self._keys[stem] if kind in _NAME_KINDS]
        return []

    def tag(self, utterance: Utterance, people: frozenset[str] = frozenset()) -> Tagged:
        tokens = [self.correct(t) for t in utterance.tokens]
        found: list[Found] = []
        taken: set[int] = set()
        date = find_date(utterance.folded)
        if date:
            inside = [i for i, (a, b) in enumerate(utterance.places) if a < date[1] and b > date[0]]
            if inside:
                typed = utterance.typed_part(utterance.places[inside[0]][0], utterance.places[inside[-1]][1])
                found.append(Found("date", typed, inside[0], inside[-1] + 1))
                taken.update(inside)
        found += self._people(utterance, people, taken, mentions_only=True)
        taken.update(i for f in found for i in range(f.start, f.end))
        found += self._names(tokens, taken)
        taken.update(i for f in found for i in range(f.start, f.end))
        found += self._people(utterance, people, taken, mentions_only=False)
        taken.update(i for f in found for i in range(f.start, f.end))
        for i, token in enumerate(tokens):
            if i not in taken and token.isdigit() and len(token) <= 3:
                found.append(Found("number", int(token), i, i + 1))
        found.sort(key=lambda f: (f.start, -f.end))
        used_only = frozenset(i for f in found if f.kind == "term" and f.value in self._used_only
                              for i in range(f.start, f.end))
        in_names = {i for f in found if f.kind in _NAME_KINDS and f.kind != "task" for i in range(f.start, f.end)}
        guess = self._task_words.guess((i, t) for i, t in enumerate(tokens) if i not in in_names - used_only)
        return Tagged(tuple(found), guess, tuple(tokens), used_only)

    def _names(self, tokens: list[str], taken: set[int]) -> list[Found]:
        """Every name and fixed word, longest first where runs overlap; a run may have several readings
        ("forberedelse": a phase and a term), each kept."""
        runs: list[tuple[int, int, list[tuple[str, Any]]]] = []
        for start in range(len(tokens)):
            if start in taken:
                continue
            joined = ""
            for end in range(start + 1, min(len(tokens), start + self._max_words) + 1):
                if end - 1 in taken:
                    break
                joined += tokens[end - 1]
                hits = self._lookup(joined, tokens[end - 1])
                if hits:
                    runs.append((start, end, hits))
                if joined not in self._prefixes:
                    break
        # Longest first; a word the model only uses never hides a name it overlaps ("as-is kortlægningen": the task
        # "as-is", not the word "as-is kortlægning").
        runs.sort(key=lambda r: (all(kind == "term" and value in self._used_only for kind, value in r[2]),
                                 -(r[1] - r[0]), r[0]))
        found: list[Found] = []
        used: set[int] = set()
        for start, end, hits in runs:
            if used.intersection(range(start, end)):
                continue
            used.update(range(start, end))
            found += [Found(kind, value, start, end) for kind, value in hits]
        return found

    def _people(self, utterance: Utterance, people: frozenset[str], taken: set[int], mentions_only: bool) -> list[Found]:
        """@mentioned people; then capitalised names that are no word the bot knows ("Mette", "Lars Nielsen"),
        not counting a common word that only starts the message ("Okay", "Undskyld")."""
        if mentions_only:
            names = sorted(people, key=len, reverse=True)
        else:
            names = []
            for match in _PERSON.finditer(utterance.typed):
                name_words = words(match[1])
                if match[1] in people or all(w in self.known for w in name_words):
                    continue
                if match.start() == 0 and max(self._lexicon.zipf(name_words[0], "da"),
                                              self._lexicon.zipf(name_words[0], "en")) >= _EVERYDAY:
                    continue  # "Okay, …", "Hvis …": an everyday word that starts the message (names are rarer)
                names.append(match[1])
        found = []
        for name in names:
            name_words = words(name)
            for start in range(len(utterance.tokens) - len(name_words) + 1):
                span = range(start, start + len(name_words))
                if list(utterance.tokens[start:start + len(name_words)]) == name_words and not taken.intersection(span):
                    found.append(Found("person", name, start, start + len(name_words)))
                    taken.update(span)
                    break
        return found


def known_words(texts: Iterable[str]) -> set[str]:
    return {w for text in texts for w in words(text)}


__all__ = ["Found", "Phrases", "Tagged", "Tagger", "TaskGuess", "known_words"]
