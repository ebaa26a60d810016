"""The words of content/sentences/<lang>/words.yaml, compiled for matching by whole (folded) words.

Both languages' lists are merged: people mix them ("er det done?", "kan du mark X as done?"). Which language
a message is in is told apart by `Vocabulary`, from the words only one language uses.
"""
from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from content import Content
from content.schema import WordsFile
from dialogs.text import words


@dataclass(frozen=True)
class Phrases:
    """Phrases of one or more words, as tuples of folded words; symbols (emoji) kept apart."""

    phrases: frozenset[tuple[str, ...]]
    symbols: frozenset[str] = frozenset()
    longest: int = 0
    # first word -> the lengths of the phrases starting with it, longest first: a lookup per word, not per length
    by_first: Mapping[str, tuple[int, ...]] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, texts: Iterable[str]) -> Phrases:
        phrases, symbols = set(), set()
        for text in texts:
            folded = tuple(words(text))
            if folded:
                phrases.add(folded)
            elif text.strip():
                symbols.add(text.strip())
        return cls.made(frozenset(phrases), frozenset(symbols))

    @classmethod
    def made(cls, phrases: frozenset[tuple[str, ...]], symbols: frozenset[str]) -> Phrases:
        lengths: dict[str, set[int]] = {}
        for phrase in phrases:
            lengths.setdefault(phrase[0], set()).add(len(phrase))
        by_first = {w: tuple(sorted(n, reverse=True)) for w, n in lengths.items()}
        return cls(phrases, symbols, max(map(len, phrases), default=0), by_first)

    def __or__(self, other: Phrases) -> Phrases:
        return Phrases.made(self.phrases | other.phrases, self.symbols | other.symbols)

    def at(self, tokens: Sequence[str], start: int) -> int:
        """How many words of the longest phrase starting at `start` (0: none)."""
        if start >= len(tokens):
            return 0
        for size in self.by_first.get(tokens[start], ()):
            if start + size <= len(tokens) and (size == 1 or tuple(tokens[start:start + size]) in self.phrases):
                return size
        return 0

    def ending(self, tokens: Sequence[str], end: int) -> int:
        """How many words of the longest phrase ending just before `end` (0: none)."""
        for size in range(min(self.longest, end), 0, -1):
            if tuple(tokens[end - size:end]) in self.phrases:
                return size
        return 0

    def find(self, tokens: Sequence[str]) -> list[tuple[int, int]]:
        """(start, end) of each phrase found, longest first at each place, not overlapping."""
        found, at = [], 0
        while at < len(tokens):
            size = self.at(tokens, at)
            if size:
                found.append((at, at + size))
                at += size
            else:
                at += 1
        return found

    def whole(self, tokens: Sequence[str]) -> bool:
        return tuple(tokens) in self.phrases

    def vocabulary(self) -> set[str]:
        return {word for phrase in self.phrases for word in phrase}


def _named(mapping: Mapping[Any, list[str]]) -> dict[str, Phrases]:  # keys: names (str or the schema's Literals)
    return {name: Phrases.of(texts) for name, texts in mapping.items()}


class Words:
    """Every word list, both languages merged."""

    def __init__(self, files: Sequence[WordsFile]):
        def merged(field: str) -> Phrases:
            result = Phrases.made(frozenset(), frozenset())
            for f in files:
                result = result | Phrases.of(getattr(f, field))
            return result

        def merged_named(get: Callable[[WordsFile], Mapping[Any, list[str]]]) -> dict[str, Phrases]:
            result: dict[str, Phrases] = {}
            for f in files:
                for name, phrases in _named(get(f)).items():
                    result[name] = result[name] | phrases if name in result else phrases
            return result

        self.greetings = merged("greetings")
        self.requests = merged("requests")
        self.fillers = merged("fillers")
        self.leading = merged("leading_fillers")
        self.trailing = merged("trailing_fillers")
        self.question_words = merged("question_words")
        self.question_verbs = merged("question_verbs")
        self.hedges = merged("hedges")
        self.negations = merged("negations")
        self.task_references = merged("task_references")
        self.me = merged("me")
        self.yes = merged("yes")
        self.no = merged("no")
        self.confirming = merged("confirming")
        self.model_names = merged("model_names")
        self.possessives = merged("possessives")
        self.number_words = merged("number_words")
        self.all_words = merged("all_words")
        self.conjunctions = merged("conjunctions")
        self.who_words = merged("who_words")
        self.title_markers = merged("title_markers")
        self.name_before = merged("name_before")
        self.name_after = merged("name_after")
        self.defining = merged("defining")
        self.phase_references = merged_named(lambda f: f.phase_references.model_dump())
        self.directions = merged_named(lambda f: f.directions.model_dump())
        self.model_parts = merged_named(lambda f: f.model_parts)
        self.roles = merged_named(lambda f: f.roles.model_dump())
        self.smalltalk = merged_named(lambda f: f.smalltalk.model_dump())
        self.cues = merged_named(lambda f: f.cues)
        self.anchors = merged_named(lambda f: f.anchors)
        # The templates' fixed lists, by list name: value -> phrases.
        self.fixed = {name: merged_named(operator.attrgetter(field))
                      for name, field in (("milestone", "milestones"), ("aspect", "aspects"), ("language", "languages"),
                                          ("sort", "sort"), ("period", "periods"))}
        self.stopwords = frozenset(w for f in files for text in f.stopwords for w in words(text))
        self.phase_compounds = tuple(sorted({w for f in files for text in f.phase_compounds for w in words(text)},
                                            key=len, reverse=True))

    @classmethod
    def of(cls, content: Content) -> Words:
        return cls([content.words[lang] for lang in sorted(content.words)])

    def vocabulary(self) -> set[str]:
        """Every word of every list: words the understanding knows, never "corrected" as typos."""
        lists = [self.greetings, self.requests, self.fillers, self.leading, self.trailing, self.question_words,
                 self.question_verbs, self.hedges, self.negations, self.task_references, self.me, self.yes, self.no,
                 self.name_before, self.name_after, self.defining, self.model_names, self.title_markers,
                 self.possessives, self.who_words, self.number_words, self.all_words, self.conjunctions]
        for group in (self.phase_references, self.directions, self.model_parts, self.roles, self.smalltalk, self.cues, self.anchors,
                      *self.fixed.values()):
            lists += list(group.values())
        return set(self.stopwords).union(*(phrases.vocabulary() for phrases in lists))
