"""The held-out set (tests/data/heldout/): the frozen test part is untouched and scores at least 90 % with no
message read as a change it is not; the dev part (tuned on) guards against regressions. The figures printed
here are the ones the README reports (python -m tests.understanding_eval prints them per kind)."""
from __future__ import annotations

import hashlib

import pytest

from tests.understanding_eval import HELDOUT, current_reader, load, report, score

FROZEN_SHA256 = "465cf5b8d4c4d346327e49691fbd82e30e32a65e480912b58ab977eeaf929f0d"  # written 2026-12-02, never edited


@pytest.fixture(scope="module")
def reader():
    return current_reader()


def test_the_frozen_part_is_the_one_written_blind():
    assert hashlib.sha256((HELDOUT / "test.yaml").read_bytes()).hexdigest() == FROZEN_SHA256


def test_the_parts_are_disjoint_and_large_enough():
    dev, test = load("dev"), load("test")
    assert len(dev) + len(test) >= 400 and len(test) >= 200
    assert not {i["id"] for i in dev} & {i["id"] for i in test}
    # The two writers happened to write four short messages alike, one of each pair fell in each part.
    assert {i["text"] for i in dev} & {i["text"] for i in test} == {"fortryd", "list the themes", "hvad hedder faserne",
                                                                    "nej tak"}


@pytest.mark.parametrize("part, required", [("test", 0.90), ("dev", 0.95)])
def test_held_out_understanding(reader, part, required):
    read, terms, changing = reader
    result = score(load(part), read, terms, changing)
    print("\n" + report(part, result))
    assert not result.unsafe, [line.split(":")[0] for line in result.unsafe]  # ids only: the test part is frozen
    assert result.accuracy >= required, f"{part}: {result.accuracy:.1%}"
