"""What the classifier sees of a message: its words with names replaced by their kind, and the sentence's kind.

"Hvem er ansvarlig for Planlæg uddannelse?" becomes the words hvem er ansvarlig for <task>, the pairs
^_hvem hvem_er er_ansvarlig ansvarlig_for for_<task>, the kinds found (k:task), and ?:mark ?:q. Names
never seen in the examples are then as good as those that were; a misspelt word counts as the word it is.
"""
from __future__ import annotations

import itertools

from dialogs.understanding.entities import Tagged
from dialogs.understanding.utterance import Utterance

# Which kind stands for a run of words that has several readings ("forberedelse": phase before term).
_PLACEHOLDER_ORDER = ("date", "person", "municipality", "task", "phase_ref", "phase", "milestone", "aspect",
                      "theme", "model", "model_part", "term", "wave", "language", "sort", "period", "role", "number")
_BY_VALUE = {"model_part"}  # kinds whose placeholder names the value: <phases> and <themes> ask for different things
# Kinds whose words stay words: "den", "mig" say more as themselves than as a kind.
_KEEP_WORDS = {"task_ref", "me", "direction"}
_PREFIX = 5  # a long word also counts by its first letters: "markeret", "markere", "marker" meet


def shape(utterance: Utterance, tagged: Tagged) -> str:
    """The message as the examples are remembered: its words with names as their kind ("hvem er <role> for
    <task>"), the same for every task, phase or person named."""
    return " ".join(_sequence(utterance, tagged, None)[0])


def features(utterance: Utterance, tagged: Tagged, known: frozenset[str] | None = None) -> list[str]:
    """`known`: the words the classifier has seen often enough to weigh; any other word counts as <unk>
    (and a message of mostly unknown words is most likely about something else entirely)."""
    sequence, extra = _sequence(utterance, tagged, known)
    return _features(utterance, tagged, sequence, extra)


def _sequence(utterance: Utterance, tagged: Tagged, known: frozenset[str] | None) -> tuple[list[str], list[str]]:
    sequence: list[str] = []
    extra: list[str] = []  # words of a task found by its words: also features as themselves
    at_run: dict[int, tuple[int, str, str]] = {}  # start -> (end, placeholder, kind)
    guess = tagged.task_guess
    guessed = guess.places if guess and (guess.id or guess.candidates) and not tagged.first("task") else frozenset()
    for found in tagged.found:
        if found.kind in _KEEP_WORDS or found.kind not in _PLACEHOLDER_ORDER:
            continue
        if found.kind == "term" and found.start in tagged.used_only and found.start in guessed:
            continue  # a word the model only uses, in a task's name ("snitfladerne er købt hjem"): the task's words
        start = found.start
        rank = _PLACEHOLDER_ORDER.index(found.kind)
        kind = f"{found.value}" if found.kind in _BY_VALUE else found.kind
        if start not in at_run or rank < _PLACEHOLDER_ORDER.index(at_run[start][2]):
            at_run[start] = (found.end, kind, found.kind)
    if guessed:
        # A task found by its words stands as <task>, like one named outright ("er jobfunktionsrollerne
        # modelleret?" is "er <task>?"); its words also count as words (a participle says it is done).
        for place in sorted(guessed):
            if place not in at_run:
                at_run[place] = (place + 1, "task", "task")
    body = set(utterance.body)
    index = 0
    while index < len(tagged.words):
        if index in at_run:
            end, kind, _ = at_run[index]
            if body.intersection(range(index, end)) and not (sequence and sequence[-1] == f"<{kind}>"):
                sequence.append(f"<{kind}>")  # one placeholder for a run of the same kind
            if kind == "task" and guess and index in guess.places:
                extra.append(tagged.words[index])
            index = end
            continue
        if index in body:
            word = tagged.words[index]
            if known is not None and word not in known and not word.isdigit():
                word = "<unk>"
            if not (word == "<unk>" and sequence and sequence[-1] == "<unk>"):
                sequence.append(word)
        index += 1
    return sequence, extra


def _features(utterance: Utterance, tagged: Tagged, sequence: list[str], extra: list[str]) -> list[str]:
    out = [f"w:{item}" for item in sequence + extra]
    out += [f"p:{item[:_PREFIX]}" for item in sequence + extra if len(item) > _PREFIX + 1 and not item.startswith("<")]
    pairs = ["^", *sequence]
    out += [f"b:{a}_{b}" for a, b in itertools.pairwise(pairs)]
    out += [f"k:{kind}" for kind in {f.kind for f in tagged.found}]
    # Which term: "faserne" and "temaerne" are both terms, and ask for different overviews.
    out += [f"v:term:{f.value}" for f in tagged.all("term")]
    if tagged.task_guess and (tagged.task_guess.id or tagged.task_guess.candidates):
        out.append("k:task~")
    for flag, on in (("mark", utterance.question_mark), ("q", utterance.question), ("req", utterance.request),
                     ("hedge", utterance.hedged), ("neg", utterance.negated)):
        if on:
            out.append(f"?:{flag}")
    unknown = sum(1 for item in sequence if item == "<unk>")
    if unknown >= 2 and unknown * 2 >= len(sequence):
        out.append("u:mostly")
    if not sequence:
        out.append("w:<nothing>")
    return out
