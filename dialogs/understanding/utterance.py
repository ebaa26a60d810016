"""A message made ready to read: its words, what is padding around the request, and what kind of sentence it is.

"Godmorgen! Kan du lige fortælle mig hvad vi mangler? Tak" has the body "fortælle mig hvad vi mangler": the
greeting, the polite opening ("kan du"), the filler ("lige") and the thanks carry nothing for what is asked,
and the opening makes the "?" a request, not a question. The word lists are data (words.yaml).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from dialogs.text import MAX_UTTERANCE, as_typed, clean, fold
from dialogs.understanding.words import Words

_NOTE = re.compile(r"^[^:?]{0,25}\d\s*:\s")  # "ikke endnu 2: …", "2: …"

_TOKEN = re.compile(r"[0-9a-z]+")


@dataclass(frozen=True)
class Utterance:
    typed: str  # the message as typed, cleaned of markup and edge punctuation
    folded: str  # `typed` folded (lower case, æ/ø/å as ae/oe/aa): what everything is matched on
    tokens: tuple[str, ...]  # its words, folded
    places: tuple[tuple[int, int], ...]  # each word's (start, end) in `folded`
    body: tuple[int, ...]  # indexes of the words left after greetings, requests and fillers
    question_mark: bool
    request: bool  # opens with a polite request ("kan du …", "could you …")
    question: bool  # asks something: "?", a question word, or a verb first ("er X udført?")
    # Its only "?" comes after "N: " ("ikke endnu 2: afventer byrådet (maj)?"): an answer to the self-check with
    # a note is still an answer; any other message with it is still a question.
    question_in_note: bool
    hedged: bool  # unsure ("jeg tror …", "maybe …")
    negated: bool  # "ikke", "not"
    symbols: str  # what the message holds besides words (an emoji answer: "👍")

    @property
    def body_words(self) -> tuple[str, ...]:
        return tuple(self.tokens[i] for i in self.body)

    @property
    def body_text(self) -> str:
        return " ".join(self.body_words)

    def typed_part(self, start: int, end: int) -> str:
        """The stretch of the message as typed that folds to folded[start:end] ("15/3-2027", "Lars Nielsen")."""
        return as_typed(self.typed, self.folded[start:end])

    def typed_words(self, start: int, end: int) -> str:
        """Words start..end-1 as typed, with what stands between them."""
        return self.typed_part(self.places[start][0], self.places[end - 1][1])


_CLAUSE_BREAK = re.compile(r"[,.;:!?–—-]\s*$")
_MARKS = re.compile(r"[,.;:!?–—-]")


def prepare(text: str, words: Words, people: frozenset[str] = frozenset()) -> Utterance:
    typed = clean(text, people)
    folded = fold(typed)
    found = list(_TOKEN.finditer(folded))
    tokens = tuple(m[0] for m in found)
    start, end, request = 0, len(tokens), False
    changed = True
    while changed:  # "Hej! Nå, kan du lige …": greetings, leading fillers and requests in any order
        changed = False
        for phrases, is_request in ((words.greetings, False), (words.leading, False), (words.requests, True)):
            size = phrases.at(tokens, start)
            if size and start + size < end:
                start += size
                request = request or is_request
                changed = True
    while (size := words.trailing.ending(tokens, end)) and end - size > start:
        end -= size
    dropped: set[int] = set()
    for a, b in words.fillers.find(tokens[start:end]):
        dropped.update(range(start + a, start + b))
    # A request later in the message, after a comma or a full stop: "…, kan du genåbne den?"
    clause_starts: list[int] = []
    if _MARKS.search(text or ""):
        marked = fold(clean(text, people, clauses=True))
        marked_places = [m.start() for m in _TOKEN.finditer(marked)]
        clause_starts = [i for i in range(start + 1, end)
                         if len(marked_places) == len(tokens) and _CLAUSE_BREAK.search(marked[:marked_places[i]])]
    for i in clause_starts:
        size = words.requests.at(tokens, i)
        if size:
            request = True
            dropped.update(range(i, min(i + size, end - 1)))
    body = tuple(i for i in range(start, end) if i not in dropped) or tuple(range(start, end))
    first = [tokens[i] for i in body]
    question_mark = "?" in (text or "")
    # A "?" only in what follows "2: " may be a note's ("ikke endnu 2: afventer byrådet?"): see `question_in_note`.
    note = _NOTE.search(text or "")
    in_note = note is not None and question_mark and "?" not in (text or "")[:note.end()]
    # Asks: a question word or a verb first ("hvad …", "er X udført"), also after a request ("kan du fortælle
    # mig, om X er udført?"); a "?" only when no request makes it a polite command ("kan du markere X?").
    asks = bool(first) and bool(words.question_words.at(first, 0) or words.question_verbs.at(first, 0))
    symbols = "".join(ch for ch in typed if not ch.isalnum() and not ch.isspace() and ch not in ".,;:!?-–—'\"")
    body_tokens = [tokens[i] for i in body]
    return Utterance(
        typed=typed, folded=folded, tokens=tokens, places=tuple(m.span() for m in found), body=body,
        question_mark=question_mark, request=request, question=asks or (question_mark and not request),
        question_in_note=in_note and not asks,
        # A message longer than what is read may say more about the change than the bot saw: asked about first.
        hedged=bool(words.hedges.find(tokens)) or len(typed) >= MAX_UTTERANCE, negated=bool(words.negations.find(body_tokens)), symbols=symbols)
