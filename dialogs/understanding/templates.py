"""Sentence templates (hassil), asked only about the templates an utterance could possibly match.

hassil's `recognize_all` walks every template of a language on every call: it builds match settings for
each block of sentences, checks each template's required words, and runs its matcher on all that pass,
including templates that start with a list ("{aspect} [<i>] {phase}") which its word check cannot rule
out, and templates that start with a wildcard and backtrack over the whole text ("{task} <udfoert>").
Most of that is work on templates that cannot match. So each template is indexed once, at start-up, by
what any text it matches must have:

- how it starts: the template's literal text up to its first wildcard, for each way its alternatives
  ("(marker|sæt)", "[vores|jeres] {milestone}", an {aspect} value) can spell it; unknown when it starts
  with a wildcard;
- how it ends: the same from the other end ("... som færdig"); unknown when it ends with a wildcard;
- the words it requires anywhere (hassil's own required fragments: one word of each required group).

An utterance's candidates are the templates whose start, end and required words it has (found by walking
a tree of starts letter by letter, not by trying every template); hassil then runs on those alone, in its
own order, so it yields exactly the results, in the order, it would have yielded on all templates.

The checks compare "skeletons": case-folded, letters and digits only. hassil only removes punctuation
and collapses spaces before it matches, matches literal text case-insensitively, and between two
literal parts of a template allows only spaces (or "-"/"_", read as spaces); so anything hassil can
match shows in the skeleton. The checks can let a template through for nothing, never keep one out
that would have matched (tests/core/test_templates.py compares with recognize_all over all templates).
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from hassil import recognize_all
from hassil.expression import Alternative, Expression, ListReference, RuleReference, Sentence, Sequence, TextChunk
from hassil.intents import Intent, IntentData, Intents, SlotList, TextSlotList
from hassil.recognize import RecognizeResult

_NOT_WORD_CHAR = re.compile(r"[\W_]+")  # what the skeleton drops: everything but letters and digits


def skeleton(text: str) -> str:
    """Letters and digits only, case-folded: what a text keeps of everything hassil could match in it."""
    return _NOT_WORD_CHAR.sub("", unicodedata.normalize("NFC", text).casefold())


# -- what a template needs ---------------------------------------------------------------------------------
# How a template (part) can start, or end: the skeletons of the literal text at that edge, each either
# complete (the part is exactly that text) or open (a wildcard or something not indexed comes next, going
# inwards: anything may).
_Edge = frozenset[tuple[str, bool]]
_EMPTY: _Edge = frozenset({("", True)})
_ANYTHING: _Edge = frozenset({("", False)})
_MAX_SPELLINGS = 256  # alternatives multiply along a template; past this, stop spelling them out
_SPELT_LENGTH = 12  # letters of an edge worth spelling out


class _Side:
    """Spells out one edge (start or end) of the templates of one block of sentences."""

    def __init__(self, at_end: bool, rules: dict[str, Sentence], lists: dict[str, SlotList]):
        self.at_end = at_end
        self._rules = rules
        self._lists = lists
        self._named: dict[tuple[str, str], _Edge] = {}  # ("rule" | "list", name) -> its edge, worked out once

    def edge(self, exp: Expression) -> _Edge:
        if isinstance(exp, TextChunk):
            return frozenset({(skeleton(exp.text), True)})
        if isinstance(exp, Alternative):
            alternatives = [self.edge(item) for item in exp.items]
            return frozenset().union(_EMPTY if exp.is_optional else frozenset(), *alternatives)
        if type(exp) is Sequence:  # a Permutation (also a Group) may start with any of its items: not indexed
            edge = _EMPTY
            for item in reversed(exp.items) if self.at_end else exp.items:
                edge = self._then(edge, self.edge(item))
            return edge
        if isinstance(exp, RuleReference) and exp.rule_name in self._rules:
            return self._of_named(("rule", exp.rule_name), lambda: self.edge(self._rules[exp.rule_name].expression))
        if (isinstance(exp, ListReference) and exp.prefix is None and exp.suffix is None
                and isinstance(values := self._lists.get(exp.list_name), TextSlotList)):
            return self._of_named(("list", exp.list_name), lambda: self._list_edge(values))
        return _ANYTHING  # a wildcard, a range, anything else

    def _list_edge(self, values: TextSlotList) -> _Edge:
        texts = [value.text_in for value in values.values  # hassil skips empty values
                 if not (isinstance(value.text_in, TextChunk) and not value.text_in.text.strip())]
        return frozenset().union(*(self.edge(text) for text in texts))

    def _of_named(self, name: tuple[str, str], work_out: Callable[[], _Edge]) -> _Edge:
        if name not in self._named:
            self._named[name] = _ANYTHING  # what a rule that refers back to itself finds: not spelt out
            self._named[name] = work_out()
        return self._named[name]

    def _then(self, edge: _Edge, inner: _Edge) -> _Edge:
        """`edge`, then (going inwards) `inner`. Skeletons of adjacent literal parts simply join."""
        complete = [text for text, done in edge if done]
        if len(complete) * len(inner) > _MAX_SPELLINGS:
            return frozenset((text, False) for text, _ in edge)  # known so far; what follows is not spelt out
        joined = {self._cut((more + text) if self.at_end else (text + more), done)
                  for text in complete for more, done in inner}
        return frozenset({(text, False) for text, done in edge if not done} | joined)

    def _cut(self, text: str, done: bool) -> tuple[str, bool]:
        """An edge this long tells templates apart well enough: keep that much, and treat the rest as open."""
        if len(text) <= _SPELT_LENGTH:
            return text, done
        return (text[-_SPELT_LENGTH:] if self.at_end else text[:_SPELT_LENGTH]), False


def _spellings(side: _Side, sentence: Sentence) -> tuple[str, ...] | None:
    """The skeletons a text the template matches may start (end) with; None: it may start (end) anyhow."""
    texts = {text for text, _ in side.edge(sentence.expression)}
    return None if "" in texts else tuple(sorted(texts))


@dataclass(frozen=True)
class _Template:
    block: IntentData  # a copy of the template's block of sentences holding this one template only
    intent: str
    starts: tuple[str, ...] | None  # None: may start with anything
    ends: tuple[str, ...] | None  # None: may end with anything
    required: tuple[tuple[str, ...], ...]  # the text has at least one word of each group

    def may_match(self, text_skeleton: str) -> bool:
        """Whether a text that starts as this template may start also ends as it may end and has its words."""
        if self.ends is not None and not text_skeleton.endswith(self.ends):
            return False
        return all(any(word in text_skeleton for word in group) for group in self.required)


class _Block:
    """What the templates of one block of sentences share: their rules and lists, as hassil merges them."""

    def __init__(self, intents: Intents, intent: str, block: IntentData):
        self.intent = intent
        self.block = block
        self.rules = {**intents.expansion_rules, **block.expansion_rules}
        lists = {**intents.slot_lists, **block.slot_lists}
        self.start = _Side(False, self.rules, lists)
        self.end = _Side(True, self.rules, lists)

    def template(self, sentence_text: str) -> _Template:
        # The block (its fixed slots and all) with this one sentence only, parsed now (hassil parses a
        # block's sentences the first time it reads them).
        own_block = replace(self.block, sentence_texts=[sentence_text])
        sentence = own_block.sentences[0]
        required = []
        for group in sentence.get_required_clauses(self.rules):  # hassil keeps these on the sentence, for its check
            words = {skeleton(word) for word in group}
            if "" not in words:  # a fragment of punctuation only could be anywhere
                required.append(tuple(sorted(words)))
        return _Template(own_block, self.intent, _spellings(self.start, sentence), _spellings(self.end, sentence),
                         tuple(required))


class _StartTrie:
    """Template numbers by the skeletons they may start with, one letter per level: a text's walk down it
    meets every template that may start as the text does, and stops where no template goes on."""

    __slots__ = ("next", "templates")

    def __init__(self) -> None:
        self.next: dict[str, _StartTrie] = {}
        self.templates: tuple[int, ...] = ()  # templates with a start that ends here

    def add(self, start: str, template: int) -> None:
        node = self
        for letter in start:
            if letter not in node.next:
                node.next[letter] = _StartTrie()
            node = node.next[letter]
        node.templates += (template,)

    def starting_as(self, text_skeleton: str) -> set[int]:
        found: set[int] = set()
        node = self
        for letter in text_skeleton:
            following = node.next.get(letter)
            if following is None:
                break
            node = following
            found.update(node.templates)
        return found


class _Language:
    """One language's templates, each on its own, in the order hassil tries them."""

    def __init__(self, intents: Intents):
        self._intents = intents
        # hassil's own order: intents, their blocks, each block's sentences (which hassil sorts).
        self._templates: list[_Template] = []
        for name, intent in intents.intents.items():
            for block in intent.data:
                shared = _Block(intents, name, block)
                for sentence in block.sentences:
                    assert sentence.text is not None  # hassil keeps the text of a block's sentences (keep_text=True)
                    self._templates.append(shared.template(sentence.text))
        self._may_start_anyhow = {i for i, t in enumerate(self._templates) if t.starts is None}
        self._starts = _StartTrie()
        for i, template in enumerate(self._templates):
            for start in template.starts or ():
                self._starts.add(start, i)

    def recognize(self, text: str, text_skeleton: str) -> Iterator[RecognizeResult]:
        numbers = sorted(self._may_start_anyhow | self._starts.starting_as(text_skeleton))  # in hassil's order
        candidates = [self._templates[i] for i in numbers if self._templates[i].may_match(text_skeleton)]
        if candidates:
            yield from recognize_all(text, self._only(candidates))

    def _only(self, templates: list[_Template]) -> Intents:
        """The language's intents holding just these templates, in the same order (an intent's templates
        are next to each other in it)."""
        intents: dict[str, Intent] = {}
        for template in templates:
            intents.setdefault(template.intent, Intent(template.intent, [])).data.append(template.block)
        return replace(self._intents, intents=intents)


class Templates:
    """Every language's templates; `recognize` yields what hassil's recognize_all over each would, in order."""

    def __init__(self, languages: list[Intents]):
        self._languages = [_Language(intents) for intents in languages]

    def recognize(self, text: str) -> Iterator[RecognizeResult]:
        text_skeleton = skeleton(text)
        for language in self._languages:
            yield from language.recognize(text, text_skeleton)
