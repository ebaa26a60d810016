"""The store's behaviour, the same on both backends: the TinyDB data dir and PostgreSQL (a real PostgreSQL 15
started by the suite, tests/postgres_server.py). Two store objects on one data dir or one database stand for two
processes or two instances. What only one backend has (files, fsync, COPY) is tested beside it.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.migrate import MigrationError, backup_postgresql, to_postgresql
from bot.pg_store import PgStore
from bot.store import SNAPSHOT_EVERY_EVENTS, TinyStore
from dialogs import events, gate_steps
from dialogs.events import EventError
from dialogs.store import Actor, AuditEvent, ConversationRecord, Registration, marking
from tests.e2e.test_store_durability import CONV, EJER, LEDER, METTE, OLE, OTHER_TENANT, T0, T1, TENANT

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["tinydb", "postgresql"])
async def stores(request, tmp_path):
    """Two stores on the same data (two processes on a data dir, two instances on a database), and a factory
    for a third (a restart)."""
    made = []

    def open_store():
        store = TinyStore(tmp_path / "data") if request.param == "tinydb" else PgStore(request.getfixturevalue("postgres_url"))
        made.append(store)
        return store

    yield open_store(), open_store(), open_store
    for store in made:
        await store.aclose()
        store.close()


async def register(store, code: str = "0751", tenant: str = TENANT, n: int = 1) -> str | None:
    return await store.register(Registration(f"conversation:a:personal-{n}", code, tenant, OLE, T0), f"a:personal-{n}")


async def fresh(store):
    """The store, caught up with what the other one wrote: a file store reads another process's marks within a
    checkpoint (a second in `serve`); a database at once (its checkpoint does nothing)."""
    await store.checkpoint()
    await asyncio.sleep(0.01)  # a file checked in the last 2 ms is trusted (bot/json_file.py Freshness)
    return store


async def all_events(store) -> list[dict]:
    if isinstance(store, TinyStore):
        return [json.loads(line) for line in store.audit_path.read_bytes().splitlines()] if store.audit_path.exists() else []
    pool = await store.pool()
    return [row["body"] for row in await pool.fetch("select body from events order by seq")]


# -- one read-modify-write ----------------------------------------------------------------------------------
async def test_a_change_sees_the_state_inside_the_lock_and_its_events_are_applied(stores):
    a, b, _ = stores
    await register(a)
    seen = []

    def decide(state):
        seen.append(state.tasks.get(EJER))
        return [AuditEvent("0751", "done", EJER, METTE, T1, CONV)], "ok"
    assert await a.change("0751", decide) == "ok"
    assert seen == [None]
    state = await (await fresh(b)).municipality("0751")
    assert state.tasks[EJER].done and state.tasks[EJER].by == METTE


async def test_an_invalid_event_writes_nothing_not_even_the_valid_one_before_it(stores):
    a, b, _ = stores
    await register(a)
    before = await all_events(a)
    good = AuditEvent("0751", "done", EJER, METTE, T1, CONV)
    bad = AuditEvent("0751", "milestone", None, METTE, T1, CONV, details={"name": "go-live"})  # no date
    with pytest.raises(EventError):
        await a.change("0751", lambda state: ([good, bad], None))
    assert await all_events(a) == before
    assert EJER not in (await (await fresh(b)).municipality("0751")).tasks


async def test_a_decision_without_events_writes_nothing(stores):
    a, _, _ = stores
    await register(a)
    before = await all_events(a)
    assert await a.change("0751", lambda state: ([], "nothing")) == "nothing"
    assert await all_events(a) == before


async def test_marks_through_two_stores_at_once_lose_nothing_and_one_task_is_marked_once(stores):
    a, b, _ = stores
    await register(a)
    tasks = [f"task-{n:02d}" for n in range(40)]
    people = [Actor(f"aad-{n}", f"Person {n}") for n in range(40)]
    await asyncio.gather(*((a if n % 2 else b).set_task("0751", task, True, people[n], T1, CONV)
                           for n, task in enumerate(tasks)))
    # The same task, ten people at once, through both: one change, nine "already".
    changes = await asyncio.gather(*((a if n % 2 else b).set_task("0751", LEDER, True, people[n], T1, CONV)
                                     for n in range(10)))
    assert sum(c.changed for c in changes) == 1
    for store in (a, b):
        state = await (await fresh(store)).municipality("0751")
        assert {t for t, s in state.tasks.items() if s.done} == {*tasks, LEDER}
    assert sum(1 for e in await all_events(a) if e["action"] == "done") == 41


async def test_a_check_inside_the_change_holds_under_concurrency(stores):
    """The decision is made on the state inside the lock: ten changes that each add a local task only while
    fewer than five exist add exactly five, through two stores at once."""
    a, b, _ = stores
    await register(a)

    def adding(n):
        def decide(state):
            if len(state.local_tasks) >= 5:
                return [], False
            task = {"id": f"lokal-{n}", "phase": 1, "theme": "projektstyring", "title": f"Opgave {n}"}
            return [AuditEvent("0751", "local_add", f"lokal-{n}", METTE, T1, CONV, details={"task": task})], True
        return decide
    added = await asyncio.gather(*((a if n % 2 else b).change("0751", adding(n)) for n in range(10)))
    assert sum(added) == 5
    assert len((await (await fresh(a)).municipality("0751")).local_tasks) == 5


# -- the self-check as a state machine ----------------------------------------------------------------------
async def test_the_self_check_goes_through_its_stages_as_events_and_history_shows_the_steps(stores):
    a, b, _ = stores
    await register(a)
    origin = gate_steps.Origin(METTE, T1, CONV)

    async def step(make):
        await a.change("0751", lambda state: ([make(state)], None))
        return await (await fresh(b)).municipality("0751")

    state = await step(lambda s: gate_steps.start(s, origin, 1, open_tasks=2))
    assert gate_steps.stage(state) is gate_steps.Stage.AWAITING_SKIP
    with pytest.raises(gate_steps.GateError):
        gate_steps.answer(state, origin, {"1": {"ok": True, "note": ""}})  # not while awaiting the skip
    state = await step(lambda s: gate_steps.confirm_skip(s, origin))
    assert gate_steps.stage(state) is gate_steps.Stage.CHECKING and state.gate["skip_confirmed"]
    state = await step(lambda s: gate_steps.answer(s, origin, {"1": {"ok": True, "note": ""}}))
    state = await step(lambda s: gate_steps.answer(s, origin, {"2": {"ok": False, "note": "mangler"}}))
    assert dict(state.gate["answers"]) == {"1": {"ok": True, "note": ""}, "2": {"ok": False, "note": "mangler"}}
    state = await step(lambda s: gate_steps.wait(s, origin, 1))
    assert gate_steps.stage(state) is gate_steps.Stage.AWAITING_SKIP
    state = await step(lambda s: gate_steps.confirm_skip(s, origin))
    state = await step(lambda s: gate_steps.complete(s, origin, s.gate, ["a", "b"], 1))
    assert state.phase == 2 and state.gate is None
    shown = [e.action for e in await (await fresh(b)).audit("0751")]
    assert shown == ["phase", "gate_skip", "gate_answer", "gate_answer", "gate_skip", "gate_start", "register"]
    assert "gate_wait" not in shown and "gate_wait" in {e["action"] for e in await all_events(a)}


# -- history from an index ----------------------------------------------------------------------------------
async def test_history_is_newest_first_per_municipality_and_per_task_whatever_came_before(stores):
    a, b, _ = stores
    await register(a)
    await register(a, "0101", n=2)
    for n in range(30):
        await a.set_task("0751", LEDER, n % 2 == 0, METTE, f"2026-11-27T10:{n:02d}:00+00:00", CONV)
        await a.set_task("0101", EJER, n % 2 == 0, OLE, f"2026-11-27T10:{n:02d}:00+00:00", CONV)
    newest = await (await fresh(b)).audit("0751", limit=15)
    assert len(newest) == 15 and [e.at for e in newest] == sorted((e.at for e in newest), reverse=True)
    assert newest[0].at == "2026-11-27T10:29:00+00:00" and {e.code for e in newest} == {"0751"}
    per_task = await (await fresh(b)).audit("0751", LEDER, limit=1)
    assert per_task[0].action == "reopen" and per_task[0].at == "2026-11-27T10:29:00+00:00"
    assert await (await fresh(b)).audit("0751", EJER) == []


# -- registrations --------------------------------------------------------------------------------------------
async def test_two_tenants_racing_for_one_municipality_one_wins(stores):
    a, b, _ = stores
    results = await asyncio.gather(*((a if n % 2 else b).register(
        Registration(f"conversation:a:{n}", "0751", TENANT if n % 2 else OTHER_TENANT, OLE, T0), f"a:{n}")
        for n in range(10)))
    owner = (await (await fresh(a)).municipality("0751")).tenant_id
    assert owner in (TENANT, OTHER_TENANT)
    assert all((r is None) == (n % 2 == (owner == TENANT)) for n, r in enumerate(results))
    assert await (await fresh(b)).codes_for_tenant(owner) == ["0751"]


async def test_a_scope_moved_to_another_municipality_releases_the_first(stores):
    a, b, _ = stores
    assert await register(a, "0101") is None
    assert await register(a, "0751") is None  # the same conversation, registered again elsewhere: a mistake fixed
    assert (await (await fresh(b)).municipality("0101")).tenant_id is None
    assert (await (await fresh(b)).registration("conversation:a:personal-1")).code == "0751"
    assert await register(b, "0101", OTHER_TENANT, n=2) is None  # the real owner is not locked out


# -- the bot's memory beside the trail --------------------------------------------------------------------------
async def test_a_nudge_is_claimed_once_across_stores_and_never_again_once_sent(stores):
    a, b, _ = stores
    now = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
    stale = (now - timedelta(minutes=10)).isoformat()
    claims = await asyncio.gather(*((a if n % 2 else b).claim_nudge("nudge-1", f"owner-{n}", now.isoformat(), stale)
                                    for n in range(10)))
    assert sum(claims) == 1
    winner = f"owner-{claims.index(True)}"
    await a.finish_nudge("nudge-1", winner, sent=True, at=now.isoformat())
    later = (now + timedelta(hours=1)).isoformat()
    assert not await b.claim_nudge("nudge-1", "late", later, later)
    assert await (await fresh(b)).sent_nudges() == {"nudge-1"}
    # A claim whose sender died (older than stale_before) is taken over; one released by its owner too.
    assert await a.claim_nudge("nudge-2", "dead", stale, stale)
    assert await b.claim_nudge("nudge-2", "alive", now.isoformat(), now.isoformat())
    assert await a.claim_nudge("nudge-3", "x", now.isoformat(), stale)
    await a.finish_nudge("nudge-3", "x", sent=False, at=now.isoformat())
    assert await b.claim_nudge("nudge-3", "y", now.isoformat(), stale)


async def test_a_pending_question_is_taken_once(stores):
    a, b, _ = stores
    now = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
    pending = {"id": "q1", "intent": "mark_done", "slots": {}, "user": METTE.id, "at": now.isoformat()}
    await a.update_thread(CONV, pending=pending)
    taken = await asyncio.gather(*((a if n % 2 else b).take_pending(CONV, METTE.id, now) for n in range(6)))
    assert [t for t in taken if t] == [pending]
    assert (await (await fresh(b)).thread(CONV)).pending is None


async def test_conversations_languages_waves_and_exports_are_shared(stores):
    a, b, _ = stores
    record = ConversationRecord("a:personal-1", "0751", {"conversation": {"id": "a:personal-1"}}, "da",
                                scope="conversation:a:personal-1")
    await a.remember_conversation(record)
    assert await (await fresh(b)).conversations() == [record]
    await b.deactivate_conversation(record.key)
    assert await (await fresh(a)).conversations() == []
    await a.set_language(METTE.id, "en")
    assert await (await fresh(b)).language(METTE.id) == "en"
    await a.set_wave_signature("bolge-1", "abc")
    assert await (await fresh(b)).wave_signature("bolge-1") == "abc"
    await a.put_export("token-1", "portefolje.csv", b"kode;navn\n", timedelta(minutes=15))
    if isinstance(a, TinyStore):  # one process per data dir: exports live in that process
        assert await a.get_export("token-1") == ("portefolje.csv", b"kode;navn\n")
    else:
        assert await b.get_export("token-1") == ("portefolje.csv", b"kode;navn\n")
    assert await b.get_export("no-such-token") is None


async def test_forget_user_leaves_no_trace_of_the_person(stores):
    a, b, reopen = stores
    await register(a)
    await a.set_task("0751", EJER, True, METTE, T1, CONV)
    await a.record(AuditEvent("0751", "assign", LEDER, OLE, T1, CONV,
                              details={"role": "responsible", "person": {"id": METTE.id, "name": METTE.name}}))
    await a.set_language(METTE.id, "en")
    pseudonym = Actor("forgotten-1", "")
    assert await b.forget_user(METTE.id, pseudonym, Actor("operator", "Operatør"), T1) == 2
    await b.checkpoint()
    text = json.dumps(await all_events(b)) + repr(await reopen().municipality("0751")) + repr(await (await fresh(b)).audit("0751"))
    assert METTE.id not in text and METTE.name not in text
    assert await (await fresh(a)).language(METTE.id) is None
    assert (await (await fresh(b)).municipality("0751")).tasks[EJER].by == pseudonym


async def test_what_was_acknowledged_is_there_after_a_restart(stores):
    a, _, reopen = stores
    await register(a)
    await a.set_task("0751", EJER, True, METTE, T1, CONV)
    await a.record(AuditEvent("0751", "milestone", None, METTE, T1, CONV, details={"name": "go-live", "date": "2027-03-01"}))
    state = await reopen().municipality("0751")
    assert state.tasks[EJER].done and str(state.milestones["go-live"]) == "2027-03-01"


# -- a new kind of change is one registry entry -------------------------------------------------------------
async def test_a_new_kind_of_change_needs_only_its_registry_entry(stores, monkeypatch):
    """A kind added to dialogs/events.KINDS (here: a municipality's note) is checked, applied, stored, replayed
    and listed by both stores without any other change."""
    a, _, reopen = stores
    await register(a)

    def note(doc, event):
        return {**doc, "note": event.details["text"]}
    kinds = dict(events.KINDS)
    kinds["note"] = events.Kind("note", note, ("text",))
    monkeypatch.setattr(events, "KINDS", kinds)
    with pytest.raises(EventError):
        await a.record(AuditEvent("0751", "note", None, METTE, T1, CONV, details={}))
    await a.record(AuditEvent("0751", "note", None, METTE, T1, CONV, details={"text": "husk styregruppen"}))
    assert [e.action for e in await reopen().audit("0751", limit=1)] == ["note"]


# -- TinyDB only: the snapshot, and data dirs from before events were numbered ---------------------------------
async def test_start_up_reads_only_the_trail_after_the_snapshot(tmp_path, monkeypatch):
    store = TinyStore(tmp_path)
    await register(store)
    for n in range(SNAPSHOT_EVERY_EVENTS + 5):
        await store.set_task("0751", f"task-{n % 50}", (n // 50) % 2 == 0, METTE, T1, CONV)  # each one a change
    await store.checkpoint()  # a snapshot is due: more than SNAPSHOT_EVERY_EVENTS appended
    await store.set_task("0751", EJER, True, METTE, T1, CONV)  # after the snapshot: in the trail only
    snapshot = json.loads((tmp_path / "snapshot.json").read_bytes())
    assert snapshot["lines"] >= SNAPSHOT_EVERY_EVENTS
    starts = []
    real = TinyStore._scan
    monkeypatch.setattr(TinyStore, "_scan", lambda self, fh, start, *rest: starts.append(start) or real(self, fh, start, *rest))
    reopened = TinyStore(tmp_path)
    assert starts == [snapshot["offset"]]
    assert (await reopened.municipality("0751")).tasks[EJER].done


async def test_a_data_dir_from_before_events_were_numbered_keeps_its_self_check(tmp_path):
    store = TinyStore(tmp_path)
    await register(store)
    await store.set_task("0751", EJER, True, METTE, T1, CONV)
    await store.record(AuditEvent("0751", "phase", None, METTE, T1, CONV, details={"from": 1, "to": 2}))
    await store.checkpoint()
    store.close()
    path = tmp_path / "municipalities" / "0751.json"
    data = json.loads(path.read_bytes())
    doc = data["municipality"]["1"]
    gate = {"from": 2, "to": 3, "answers": {"1": {"ok": True, "note": ""}}}
    for key in ("seq", "history"):
        doc.pop(key)
    doc["gate"] = gate  # an earlier version kept the self-check in the file only
    path.write_text(json.dumps(data))
    (tmp_path / "snapshot.json").unlink()
    state = await TinyStore(tmp_path).municipality("0751")
    assert state.phase == 2 and state.tasks[EJER].done and dict(state.gate) == gate


# -- moving between the stores ----------------------------------------------------------------------------------
async def _filled(data_dir: Path) -> TinyStore:
    store = TinyStore(data_dir)
    await register(store)
    await register(store, "0101", OTHER_TENANT, n=2)
    for n in range(120):
        await store.set_task("0751" if n % 2 else "0101", f"task-{n % 30}", n % 4 != 0, METTE if n % 3 else OLE, T1, CONV)
    await store.change("0751", lambda s: ([gate_steps.start(s, gate_steps.Origin(METTE, T1, CONV), 1, 0)], None))
    await store.record(AuditEvent("0751", "milestone", None, METTE, T1, CONV, details={"name": "go-live", "date": "2027-03-01"}))
    await store.remember_conversation(ConversationRecord("a:personal-1", "0751", {"id": "x"}, "da", scope="s"))
    await store.claim_nudge("n-1", "me", T1, T0)
    await store.finish_nudge("n-1", "me", sent=True, at=T1)
    await store.set_language(METTE.id, "en")
    await store.update_thread(CONV, task_ids=("a", "b"))
    return store


async def _same(a, b) -> None:
    for code in ("0751", "0101"):
        assert await a.municipality(code) == await (await fresh(b)).municipality(code)
        assert await a.audit(code) == await (await fresh(b)).audit(code)
        assert await a.audit(code, "task-1") == await (await fresh(b)).audit(code, "task-1")
    assert await a.registration("conversation:a:personal-2") == await (await fresh(b)).registration("conversation:a:personal-2")
    assert await a.conversations() == await (await fresh(b)).conversations()
    assert await a.sent_nudges() == await (await fresh(b)).sent_nudges() == {"n-1"}
    assert await a.language(METTE.id) == await (await fresh(b)).language(METTE.id) == "en"
    assert await a.thread(CONV) == await (await fresh(b)).thread(CONV)


async def test_a_data_dir_migrates_into_postgresql_without_loss_and_back(tmp_path, postgres, postgres_url):
    source = await _filled(tmp_path / "data")
    target = PgStore(postgres_url)
    try:
        report = await to_postgresql(source, target)
        assert f"copied {len(await all_events(source))} audit events" in report and "verified" in report
        await _same(source, target)
        with pytest.raises(MigrationError):  # never into a database that holds a bot already
            await to_postgresql(source, target)
        await target.set_task("0751", EJER, True, OLE, T1, CONV)  # the database carries on from the copied trail
        assert (await target.audit("0751", limit=1))[0].task_id == EJER
        # Backed up from PostgreSQL as a data dir: the file store answers the same, and it migrates again.
        await backup_postgresql(target, tmp_path / "backup")
        restored = TinyStore(tmp_path / "backup")
        await _same(target, restored)
        again = PgStore(postgres.create_database("t_again"))
        try:
            assert "verified" in await to_postgresql(restored, again)
            await _same(target, again)
        finally:
            await again.aclose()
    finally:
        await target.aclose()


def test_admin_migrate_on_the_command_line(tmp_path, postgres_url):
    asyncio.run(_filled(tmp_path / "data"))
    env = {**os.environ, "BOT_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-m", "bot", "admin", "migrate", "--to", postgres_url], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "verified" in done.stdout, done.stderr
    again = subprocess.run([sys.executable, "-m", "bot", "admin", "migrate", "--to", postgres_url], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "empty database" in again.stderr
    backup = subprocess.run([sys.executable, "-m", "bot", "admin", "backup", str(tmp_path / "copy")], cwd=REPO,
                            env={**env, "BOT_DATABASE_URL": postgres_url}, capture_output=True, text=True, timeout=120)
    assert backup.returncode == 0 and (tmp_path / "copy" / "audit.jsonl").exists(), backup.stderr


async def test_a_marking_decision_is_a_pure_check_and_set():
    """dialogs.store.marking decides on the state it is given: no store needed."""
    state = events.state_of({"code": "0751", "tasks": {EJER: {"done": True, "by": {"id": "x", "name": "X"},
                                                               "at": T0, "conversation": CONV}}}, "0751")
    assert marking(EJER, True, METTE, T1, CONV)(state)[0] == []
    decided, change = marking(LEDER, True, METTE, T1, CONV)(state)
    assert [e.action for e in decided] == ["done"] and change.changed
    assert marking(LEDER, False, METTE, T1, CONV)(state)[0] == []  # never done: nothing to reopen


async def test_an_instance_reads_another_instances_change_once_announced_and_without_its_listener(postgres_url):
    """PostgreSQL's read cache (bot/pg_store.py): kept only while every change is heard. A change through b is
    announced by the database at commit and a's next read shows it; with a's listener gone, a reads the database."""
    a, b = PgStore(postgres_url), PgStore(postgres_url)
    try:
        await register(a)
        assert EJER not in (await a.municipality("0751")).tasks  # now cached in a
        await b.set_task("0751", EJER, True, METTE, T1, CONV)
        for _ in range(100):  # the announcement travels on a's listener connection
            if EJER in (await a.municipality("0751")).tasks:
                break
            await asyncio.sleep(0.01)
        assert (await a.municipality("0751")).tasks[EJER].by == METTE
        assert await a.language(OLE.id) is None
        a._listener.terminate()  # the connection that hears changes is lost
        await asyncio.sleep(0.05)
        await b.set_language(OLE.id, "en")
        assert await a.language(OLE.id) == "en"  # not the cached None: nothing is trusted unheard
    finally:
        for store in (a, b):
            await store.aclose()


async def test_a_change_decided_on_a_stale_memory_is_decided_again_on_the_locked_row(postgres_url):
    """PostgreSQL's one-statement change applies only if the row still has the seq it was decided on. Here a
    never hears b's mark (its announcements are dropped), so a decides on an old state: the statement finds the
    row moved, nothing is written, and the change is decided again on the locked row: "already done"."""
    a, b = PgStore(postgres_url), PgStore(postgres_url)
    try:
        await register(a)
        await asyncio.sleep(0.1)  # the announcement of a's own registration, heard before a remembers the row
        await a.municipality("0751")
        await a._listener.remove_listener("store_changed", a._heard_change)  # deaf: a's memory of 0751 goes stale
        await b.set_task("0751", EJER, True, OLE, T1, CONV)
        await asyncio.sleep(0.05)
        assert EJER not in (await a.municipality("0751")).tasks  # stale, as arranged
        change = await a.set_task("0751", EJER, True, METTE, T1, CONV)
        assert not change.changed and change.current.by == OLE
        assert [e["by"]["id"] for e in await all_events(b) if e["action"] == "done"] == [OLE.id]
        assert (await a.municipality("0751")).tasks[EJER].by == OLE  # and a's memory was dropped
    finally:
        for store in (a, b):
            await store.aclose()
