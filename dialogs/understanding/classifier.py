"""Which intent a message most likely has, learnt at start-up from each intent's examples (examples.yaml).

A naive Bayes classifier over the message's features (features.py): words with names replaced by their kind,
word pairs, and the kind of sentence. It trains in milliseconds, needs no model file, reads the same data a
consultant edits, and can say why it chose: the features that weigh most for the winner against the runner-up.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

_ALPHA = 0.1  # additive smoothing: how much a feature never seen with an intent still counts for it


@dataclass(frozen=True)
class Ranked:
    intent: str
    probability: float


class IntentClassifier:
    def __init__(self, samples: Iterable[tuple[Iterable[str], str]]):
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for features, intent in samples:
            counts[intent].update(set(features))
        self.intents = tuple(sorted(counts))
        vocabulary = set().union(*counts.values()) if counts else set()
        size = len(vocabulary) or 1
        totals = {intent: sum(c.values()) for intent, c in counts.items()}
        # log P(feature | intent) = log((count + a) / (total + a * size)); kept as the difference from a feature
        # never seen with the intent, so scoring a message touches only the intents that saw its features.
        self._unseen = {i: math.log(_ALPHA / (totals[i] + _ALPHA * size)) for i in self.intents}
        self._delta: dict[str, dict[str, float]] = defaultdict(dict)
        for intent, c in counts.items():
            for feature, n in c.items():
                self._delta[feature][intent] = math.log((n + _ALPHA) / _ALPHA)

    def scores(self, features: Iterable[str]) -> dict[str, float]:
        known = [f for f in set(features) if f in self._delta]
        scores = {i: len(known) * u for i, u in self._unseen.items()}  # equal priors: examples are not frequencies
        for feature in known:
            for intent, delta in self._delta[feature].items():
                scores[intent] += delta
        return scores

    def rank(self, features: Iterable[str]) -> list[Ranked]:
        scores = self.scores(features)
        top = max(scores.values())
        weights = {i: math.exp(s - top) for i, s in scores.items()}
        total = sum(weights.values())
        return sorted((Ranked(i, w / total) for i, w in weights.items()), key=lambda r: -r.probability)

    def knows_word(self, word: str) -> bool:
        return f"w:{word}" in self._delta

    def known(self, features: Iterable[str]) -> int:
        """How many of the features the examples ever had: 0 means the message is nothing like any of them."""
        return sum(1 for f in set(features) if f in self._delta)

    def why(self, features: Iterable[str], intent: str, other: str | None, n: int = 4) -> list[str]:
        """The features that weigh most for `intent` against `other`: what the log says about a decision."""
        weigh = [(self._delta[f].get(intent, 0.0) - (self._delta[f].get(other, 0.0) if other else 0.0), f)
                 for f in set(features) if f in self._delta]
        return [f for w, f in sorted(weigh, reverse=True)[:n] if w > 0]
