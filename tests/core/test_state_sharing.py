"""A municipality's state is built once per version and shared by every reader, so it must be read-only,
and what dialogs hand back from it (a self-check's answers, a local task) must still be stored as JSON."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from bot.store import TinyStore
from dialogs.progress import phase_progress, tasks_of
from dialogs.store import Actor, AuditEvent, Registration
from tests.harness import begin_gate

TENANT = "6f1c2b7e-0000-4000-8000-000000000001"
METTE = Actor("aad-mette", "Mette Hansen")
AT = datetime(2026, 11, 27, 9, 30, tzinfo=UTC).isoformat()
AARHUS = "0751"


@pytest.fixture
async def store(tmp_path) -> TinyStore:
    store = TinyStore(tmp_path / "data")
    await store.register(Registration("conversation:a:1", AARHUS, TENANT, METTE, AT), "a:1")
    yield store
    store.close()


async def test_the_state_is_shared_until_a_change_and_a_change_makes_a_new_one(store, content):
    first = await store.municipality(AARHUS)
    assert await store.municipality(AARHUS) is first
    task = content.tasks_in(1)[0].id
    await store.set_task(AARHUS, task, True, METTE, AT, "a:1")
    after = await store.municipality(AARHUS)
    assert after is not first
    assert after.tasks[task].done
    assert task not in first.tasks  # an earlier reader's snapshot did not change under it


async def test_no_part_of_the_state_can_be_changed_in_place(store, content):
    await begin_gate(store, AARHUS, {"1": {"ok": True, "note": ""}})
    await store.record(AuditEvent(AARHUS, "local_add", None, METTE, AT, "a:1", details={
        "task": {"id": "lokal-1", "phase": 1, "theme": content.themes[0].id, "title": "Bestil lokaler"}}))
    state = await store.municipality(AARHUS)
    with pytest.raises(TypeError):
        state.tasks["x"] = None
    with pytest.raises(TypeError):
        state.gate["answers"]["1"]["ok"] = False
    with pytest.raises(TypeError):
        state.local_tasks[0]["title"] = "x"
    with pytest.raises(AttributeError):
        state.local_tasks.append({})
    with pytest.raises(AttributeError):  # frozen dataclass
        state.phase = 3


async def test_pieces_of_a_state_handed_back_are_stored_as_plain_json(store, content, tmp_path):
    await begin_gate(store, AARHUS, {"1": {"ok": False, "note": "mangler"}})
    gate = (await store.municipality(AARHUS)).gate
    answers = dict(gate["answers"])  # as the gate dialog does: a new top level, the old answers inside
    answers["2"] = {"ok": True, "note": ""}
    await store.record(AuditEvent(AARHUS, "gate_answer", None, METTE, AT, "a:1", details={"answers": answers}))
    task = {"id": "lokal-1", "phase": 1, "theme": content.themes[0].id, "title": "Bestil lokaler"}
    await store.record(AuditEvent(AARHUS, "local_add", None, METTE, AT, "a:1", details={"task": MappingProxyType(task)}))
    await store.checkpoint()

    reopened = TinyStore(tmp_path / "data")
    state = await reopened.municipality(AARHUS)
    assert state.gate["answers"]["1"] == {"ok": False, "note": "mangler"}
    assert state.gate["answers"]["2"] == {"ok": True, "note": ""}
    assert [dict(t) for t in state.local_tasks] == [task]
    trail = [json.loads(line) for line in (tmp_path / "data" / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert trail[-1]["details"] == {"task": task}
    reopened.close()


def _counted_one_by_one(content, state):
    """The plain definition: every task that counts for the municipality, done or not, per phase."""
    out = {}
    for task in tasks_of(content, state):
        done, total = out.get(task.phase, (0, 0))
        marked = state.tasks.get(task.id)
        out[task.phase] = (done + bool(marked and marked.done), total + 1)
    return [out.get(p.number, (0, 0)) for p in content.phases]


async def test_phase_progress_counts_as_the_definition_says(store, content):
    theme = content.themes[0].id
    for n, phase in ((1, 1), (2, 1), (3, 3)):
        await store.record(AuditEvent(AARHUS, "local_add", None, METTE, AT, "a:1", details={
            "task": {"id": f"lokal-{n}", "phase": phase, "theme": theme, "title": f"Lokal {n}"}}))
    phase1, phase2 = content.tasks_in(1), content.tasks_in(2)
    for task_id in (phase1[0].id, phase1[1].id, phase2[0].id, "lokal-1", "lokal-3", "not-in-the-content"):
        await store.set_task(AARHUS, task_id, True, METTE, AT, "a:1")
    await store.set_task(AARHUS, phase1[1].id, False, METTE, AT, "a:1")  # reopened: not done
    await store.record(AuditEvent(AARHUS, "local_remove", "lokal-3", METTE, AT, "a:1"))  # gone: counts nowhere

    state = await store.municipality(AARHUS)
    progress = phase_progress(content, state)
    assert [(p.done, p.total) for p in progress] == _counted_one_by_one(content, state)
    assert (progress[0].done, progress[0].total) == (2, len(phase1) + 2)
    assert phase_progress(content, state) is progress  # kept with the state
