"""A reading completed, then made safe: an intent that changes data runs only on a command or a clear statement.

- A question in a change's shape is answered by its read-only twin ("er X udført?" -> task_status); a question
  starting with "hvem"/"who" asks who made the change (history); a change asked about as a question that has
  no twin ("kan vi gå til næste fase?") is asked about first.
- A change is asked about first ("Mener du, at «X» er udført?") when the message is unsure (hedged), negated,
  names a municipality it does not act on, when a name was only guessed, a slot came from the thread's
  context, or the classifier read it (only a template or an example's shape acts at once; the cue words of
  words.yaml say in the log whether the classifier's reading had one).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from content.schema import IntentSpec
from dialogs.text import MAX_UTTERANCE
from dialogs.understanding.entities import Tagged
from dialogs.understanding.names import Lookup
from dialogs.understanding.reading import Understanding
from dialogs.understanding.slots import SlotFiller
from dialogs.understanding.utterance import Utterance
from dialogs.understanding.words import Words

# Slots a reading never takes from elsewhere in the message than where its template or evidence found them.
_NOT_COMPLETED = ("task", "person", "title", "numbers", "term", "term2", "date")


class Decider:
    def __init__(self, intents: dict[str, IntentSpec], words_: Words, slots: SlotFiller,
                 knows_word: Callable[[str], bool]):
        """`knows_word`: whether the examples know a word (the classifier's vocabulary)."""
        self._intents = intents
        self._words = words_
        self._slots = slots
        self._knows_word = knows_word

    def complete(self, reading: Understanding, tagged: Tagged, u: Utterance) -> Understanding:
        """Optional slots a template left out but the message names ("hvad mangler vi i fasen vi er i?"), and
        the registry's defaults for a message that names nothing else ("fortryd": the last task)."""
        spec = self._intents.get(reading.intent)
        if spec is None:
            return reading
        slots = dict(reading.slots)
        for slot in spec.slots:
            if slot in slots or slot in _NOT_COMPLETED:
                continue
            found = self._slots.evidence(slot, tagged, u.typed, spec.name)
            if found is not None:
                slots[slot] = (int(found.value) if found.kind == "phase" else f"@{found.value}") if slot == "phase" \
                    else found.value
        defaulted = []
        if self._bare(u, tagged):  # not when the message names something the bot failed to find
            for slot, value in spec.defaults.items():
                if slot not in slots:
                    slots[slot] = value
                    defaulted.append(slot)
        if spec.name == "assign" and "role" not in slots:
            slots["role"] = "performer"
        if defaulted:  # what the message did not say is asked about before anything changes
            return replace(reading, slots=slots, doubts=reading.doubts + tuple(f"{s} from context" for s in defaulted))
        return replace(reading, slots=slots)

    def _bare(self, u: Utterance, tagged: Tagged) -> bool:
        """Every word of the message is one the examples know: nothing named that the bot failed to find."""
        named = tagged.named
        return all(self._knows_word(tagged.words[i]) for i in u.body if i not in named)

    def decide(self, reading: Understanding, u: Utterance, tagged: Tagged) -> Understanding:
        spec = self._intents.get(reading.intent)
        answers_with_note = spec is not None and not spec.changes and u.question_in_note  # "nej 2: budget?"
        if spec is not None and u.question and spec.asked and not answers_with_note:  # "ja?", "er X udført?"
            return self._asked(reading, spec.asked, u)
        if spec is None or not spec.changes:
            return replace(reading, confirm=False)
        unsure = list(reading.doubts)
        if tagged.first("municipality") and "municipality" not in spec.slots:
            unsure.append("names a municipality")  # "Aarhus går live 1. marts": about someone else
        if u.hedged and (len(u.typed) >= MAX_UTTERANCE or self._hedge_outside_names(tagged)):
            unsure.append("hedged")
        if u.negated and not spec.negative:
            unsure.append("negated")
        if reading.by_classifier:  # a change only a template or an example's shape reads is made without asking
            cues = self._words.cues.get(spec.name)
            unsure.append("by the classifier" if cues and cues.find(tagged.words) else "by the classifier, no cue word")
        if unsure:
            return replace(reading, confirm=True, why=reading.why + "; confirm: " + ", ".join(unsure))
        return replace(reading, confirm=False)

    def _hedge_outside_names(self, tagged: Tagged) -> bool:
        """A hedge of the message's own ("måske", "eller"), not a word of a name it gives ("Afdæk behov for
        justeringer eller ændringer …")."""
        named = tagged.named
        return any(named.isdisjoint(range(a, b)) for a, b in self._words.hedges.find(tagged.words))

    def _asked(self, reading: Understanding, asked_as: str, u: Utterance) -> Understanding:
        """`asked_as`: the intent's `asked`, what it is when asked as a question."""
        body = u.body_words
        if body and self._words.who_words.at(body, 0) and "history" in self._intents:
            # "hvem har flyttet os til fase 2?", "who reopened X?": who made the change
            slots: dict[str, Any] = {k: v for k, v in reading.slots.items() if k in self._intents["history"].slots}
            return replace(reading, intent="history", slots=slots, unresolved={}, confirm=False,
                           why=reading.why + "; a who-question: history")
        if asked_as == "confirm":
            return replace(reading, confirm=True, why=reading.why + "; asked as a question: confirm")
        asked = self._intents[asked_as]
        slots = {k: v for k, v in reading.slots.items() if k in asked.slots}
        unresolved: dict[str, Lookup] = {k: v for k, v in reading.unresolved.items() if k in asked.slots}
        return replace(reading, intent=asked.name, slots=slots, unresolved=unresolved, confirm=False,
                       why=reading.why + f"; a question: {asked.name}")
