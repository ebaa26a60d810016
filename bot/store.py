"""The store on disk: TinyDB files for current state, an append-only JSON-lines file for the audit trail.

Files: one per municipality (its tasks, dates, phase, self-check, and its newest events for history),
conversations.json, nudges.json and lists.json (they grow with use or change often), and state.json for the
rest (registrations, preferences, waves). TinyDB rewrites a whole file on every write, so a write costs one
small file, never all history. The audit trail grows forever, so it is appended to, never rewritten.

The audit trail is the write-ahead log, and its line numbers order the events: a municipality file records
the last line it reflects ("seq"), and snapshot.json the position every file reflects. A change is
acknowledged once its events are fdatasynced; start-up reads the trail on from the snapshot and applies each
event to the files that do not reflect it yet (dialogs/events.py says what each kind does). So municipality
files need no fsync (they are replaced atomically, the trail rebuilds them, and a snapshot fsyncs them first),
and the hottest change, a task marked done or open, does not rewrite its municipality's file at all: the file
is written by `checkpoint`, once a second, however many marks it holds. The other files hold what the trail
does not (conversations, nudges' "sent" marks, preferences, lists) and are fsynced before their rename.
Another process that takes the lock first reads the events this one appended (`_catch_up`), so whatever it
writes holds them too.

Every change runs one at a time under a cross-process file lock, so `serve` and a command on the same
data dir cannot tear each other's writes. It runs on the event loop, disk included: a change is a few kB
of JSON and an fdatasync (~0.1 ms of CPU), and a worker thread measured dearer in every respect (+0.7 ms
CPU per change and a 2–3× longer p99 at 8 concurrent turns), because each system call in the thread must
win the GIL back from the busy loop. Waiting for another process's lock polls without blocking the loop.
Reads need no lock: files are replaced atomically, and each is parsed once per version (bot/json_file.py);
history is read from the municipality's file, never from the trail.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tinydb import Query, TinyDB
from tinydb.table import Document

from bot.audit_log import AuditLog
from bot.exports import ExportShelf
from bot.json_file import AtomicJSONStorage, Freshness, StoreError, fsync_dir, write_atomically
from bot.json_text import dumps as encode
from bot.json_text import loads as decode
from bot.process_lock import ProcessLock
from dialogs import events
from dialogs.store import (
    Actor,
    AuditEvent,
    Changes,
    ConversationRecord,
    Decide,
    MunicipalityState,
    Registration,
    StoreUnavailable,
    T,
    ThreadContext,
    open_question,
    thawed,
)

__all__ = ["StoreError", "TinyStore"]

_CODE = re.compile(r"\d{4}")  # municipality codes name files: nothing else may
OWN_FILES = ("conversations", "nudges", "lists")  # tables with a file of their own (the rest: state.json)
# Numbered lists remembered (one per thread; "udført 3" refers to the thread's last list). A list matters
# for minutes to days; 500 covers every thread of 98 municipalities' busy week, and keeps lists.json small.
LIST_LIMIT = 500


def _actor(d: dict) -> Actor:
    return Actor(id=d.get("id", ""), name=d.get("name", ""))


def _actor_dict(actor: Actor) -> dict:
    return {"id": actor.id, "name": actor.name}


def _event_dict(event: AuditEvent) -> dict:
    """asdict(event), without its deep copy of every value: the dict is serialised at once and dropped."""
    return {"code": event.code, "action": event.action, "task_id": event.task_id, "by": _actor_dict(event.by),
            "at": event.at, "conversation": event.conversation, "scope": event.scope, "tenant_id": event.tenant_id,
            "details": event.details}


# "historik" shows at most 15 events, newest first (per municipality, or per task); each municipality's file keeps
# its newest 20 of each, so history never reads the trail. The 5 spare cover clocks racing out of trail order.
HISTORY_KEEP = 20
# A snapshot (the trail position every state file reflects, after they are fsynced) once this many events
# were appended since the last one, or a minute has passed: start-up and a failed change read on from there.
SNAPSHOT_EVERY_EVENTS = 1000
SNAPSHOT_EVERY_SECONDS = 60.0


def _applied(doc: dict, event: AuditEvent, seq: int) -> dict:
    """The municipality's doc after `event`, the trail's line `seq`: its kind's effect (dialogs/events.py), the
    trail position it now reflects, and the event in the history index if history shows it."""
    new = events.apply(doc, event)
    new = {**new, "seq": seq}
    if events.shown(event):
        history = doc.get("history") or {}
        entry = _event_dict(event)
        tasks = dict(history.get("tasks") or {})
        if event.action == "local_remove" and event.task_id:
            tasks.pop(event.task_id, None)  # a removed task can no longer be asked about
        elif event.task_id:
            tasks[event.task_id] = [*tasks.get(event.task_id, [])[1 - HISTORY_KEEP:], entry]
        new["history"] = {"all": [*(history.get("all") or [])[1 - HISTORY_KEEP:], entry], "tasks": tasks}
    return new


def _complete_lines(path: Path):
    """The trail's lines, without a torn last one (a crash mid-append: never acknowledged)."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            if line.endswith(b"\n"):
                yield line


def _event(d: dict) -> AuditEvent:
    return AuditEvent(d["code"], d["action"], d.get("task_id"), _actor(d["by"]), d["at"], d.get("conversation", ""),
                      scope=d.get("scope"), tenant_id=d.get("tenant_id"), details=d.get("details"))


def _doc_in(data: dict | None, code: str) -> dict | None:
    """The municipality's one document in its file's parsed data."""
    return next((d for d in ((data or {}).get("municipality") or {}).values() if d.get("code") == code), None)


def _registration_row(event: AuditEvent, seq: int) -> dict:
    return {"scope": event.scope, "code": event.code, "tenant_id": event.tenant_id, "by": _actor_dict(event.by),
            "at": event.at, "seq": seq}


def _atomic(db: TinyDB) -> AtomicJSONStorage:
    """A database's storage: every one this store opens is an AtomicJSONStorage (see `_open`)."""
    storage = db.storage
    assert isinstance(storage, AtomicJSONStorage)
    return storage


def _pseudonymised(value: Any, user_id: str, replaced: dict) -> Any:
    """`value` (plain JSON) with every person {id, name} who is `user_id` replaced (GDPR erasure)."""
    if isinstance(value, dict):
        if value.get("id") == user_id and "name" in value:
            return dict(replaced)
        return {k: _pseudonymised(v, user_id, replaced) for k, v in value.items()}
    if isinstance(value, list):
        return [_pseudonymised(v, user_id, replaced) for v in value]
    return value


class TinyStore(Changes):
    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.data_dir / "state.json"
        self.audit_path = self.data_dir / "audit.jsonl"
        self.snapshot_path = self.data_dir / "snapshot.json"
        self._legacy = False  # replaying a data dir from before events were numbered (see _scan)
        self._last_snapshot = (0, time.monotonic())  # (trail lines, when) of this process's last snapshot
        self._file_lock = ProcessLock(self.data_dir / ".lock")
        self._writers = asyncio.Lock()  # one change at a time in this process
        self._audit = AuditLog(self.audit_path)
        self._staged: dict[AtomicJSONStorage, dict] | None = None  # the running change's file writes
        self._freshness = Freshness()
        self._db = self._open(self.state_path)
        # Tables that grow with use or change often get files of their own, so a write rewrites only its kind:
        # claiming a nudge must not re-encode every conversation reference, nor a new list every registration.
        self._dbs = {name: self._open(self.data_dir / f"{name}.json") for name in OWN_FILES}
        self.municipalities_dir = self.data_dir / "municipalities"
        self.municipalities_dir.mkdir(exist_ok=True)
        self._municipality_dbs: dict[str, TinyDB] = {}
        self._municipality_storages: set[AtomicJSONStorage] = set()
        self._conversation_seen: dict[str, tuple] = {}  # what this process last stored per conversation
        self._deferred: set[AtomicJSONStorage] = set()  # municipality files whose newest version is cached only
        self._audit_seen = (0, 0, 0)  # (inode, offset, lines): how far this process has read or written the trail
        self.on_write: Callable[[float], None] | None = None  # told each change's seconds to durability (metrics)
        self._exports = ExportShelf()
        self._greeted: dict[str, datetime] = {}  # conversation -> when it was last greeted
        self._check_readable()

    def _check_readable(self) -> None:
        """Fail at start-up, naming the file, rather than at the first user's message."""
        self._db.storage.read()
        self._migrate()
        legacy = False
        for code in self._codes_on_disk():
            doc = self._municipality_doc(code)
            legacy = legacy or (doc is not None and "seq" not in doc)
        if self.audit_path.exists():
            self._replay_audit(from_start=legacy)

    def _audit_position(self) -> tuple[int, int]:
        try:
            st = os.stat(self.audit_path)
        except FileNotFoundError:
            return (0, 0)
        return (st.st_ino, st.st_size)

    def _snapshot_position(self) -> tuple[int, int, int]:
        """(inode, offset, lines) of the trail that every state file reflects, from the last snapshot, if it
        still describes this trail (its bytes before the offset are the same: a copy in a backup counts; a
        trail rewritten by forget-user does not), else the trail's start."""
        try:
            snap = decode(self.snapshot_path.read_bytes())
            offset, lines, tail = int(snap["offset"]), int(snap["lines"]), bytes.fromhex(snap["tail"])
            with self.audit_path.open("rb") as fh:
                fh.seek(max(0, offset - len(tail)))
                if fh.read(len(tail)) == tail:
                    return (os.fstat(fh.fileno()).st_ino, offset, lines)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no snapshot yet, or an unreadable one: read the whole trail (what it is there to spare)
        return (0, 0, 0)

    def _replay_audit(self, from_start: bool = False) -> None:
        """Start-up: apply to the state files what a crash kept from them (the events after the snapshot that
        a file does not show), and drop a torn last line.

        Data dirs from before events were numbered (files without "seq") are rebuilt from the whole trail once."""
        with self._file_lock:
            self._freshness.expire()
            self._legacy = from_start
            start = (0, 0, 0) if from_start else self._snapshot_position()
            self._apply_trail(start)
            self._legacy = False
            self._last_snapshot = (start[2], time.monotonic())  # the next snapshot is due from there
            self._audit.cut_torn_tail()

    def _apply_trail(self, seen: tuple[int, int, int]) -> None:
        """Read the trail on from `seen` (inode, offset, lines), apply to the state files each event they do
        not reflect yet (a file's "seq" is the last line it reflects), and remember how far it was read. A
        trail replaced since (admin forget-user) is read from its start."""
        try:
            fh = self.audit_path.open("rb")
        except FileNotFoundError:
            return
        with fh:
            inode, offset, lines = seen
            now = os.fstat(fh.fileno())
            if now.st_ino != inode or now.st_size < offset:
                offset, lines = 0, 0
            docs: dict[str, dict] = {}
            rows: dict[str, dict] = {}
            end, lines = self._scan(fh, offset, lines, docs, rows)
        for code, doc in docs.items():
            self._save_municipality(code, doc)
        for row in rows.values():
            self._put("registrations", "scope", row)
        self._audit_seen = (now.st_ino, end, lines)

    def _scan(self, fh, start: int, lines_before: int, docs: dict[str, dict], rows: dict[str, dict]) -> tuple[int, int]:
        """Fold the complete lines from `start` into `docs` (municipality code -> doc) and `rows` (scope ->
        registration), skipping what they already reflect; returns where the last complete line ends and how
        many lines were read in all."""
        fh.seek(start)
        good_end, number = start, lines_before
        gates: dict[str, tuple[int, Any]] = {}
        for number, line in enumerate(fh, start=lines_before + 1):
            if not line.endswith(b"\n"):
                number -= 1
                break  # torn (a crash mid-append), or being appended right now: not an event yet
            try:
                event = _event(decode(line))
                events.check(event)
                doc = docs.get(event.code)
                if doc is None:
                    doc = self._municipality_doc(event.code) or events.empty(event.code)
                    if self._legacy and "seq" not in doc:  # its self-check in progress was not in the trail then
                        gates[event.code] = (doc.get("phase") or 1, doc.get("gate"))
                        doc = events.empty(event.code)
                if doc.get("seq", 0) < number:
                    docs[event.code] = _applied(doc, event, number)
                if event.action == "register" and event.scope:
                    row = rows.get(event.scope) or self._find("registrations", "scope", event.scope) or {}
                    if row.get("seq", 0) < number:
                        rows[event.scope] = _registration_row(event, number)
            except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
                raise StoreError(f"{self.audit_path}: line {number} is not a valid audit event; "
                                 "the file was left untouched") from None
            good_end += len(line)
        for code, (phase, gate) in gates.items():
            if gate and docs[code].get("phase", 1) == phase:
                docs[code] = {**docs[code], "gate": gate}
        return good_end, number

    async def _write(self, fn, *args, defer: bool | Callable[[], bool] = False) -> Any:
        """A change: `fn` runs under the cross-process lock, its file writes staged; its result is returned
        once they are written and the audit events it appended are fsynced, so nothing is acknowledged that
        a crash could take back.

        defer: the change's municipality files are written later (`checkpoint`), for changes that the audit
        trail alone restores (a task marked done or open): the hot path then costs an append and an fsync,
        not a file rewrite per mark."""
        async with self._writers:
            await self._file_lock.acquire_async()
            self._freshness.expire()  # with the lock held, read every file as it is now
            started, before = time.perf_counter(), self._audit.appended
            try:
                self._staged = {}
                try:
                    self._catch_up()
                    result = fn(*args)
                except BaseException:
                    self._discard(self._staged)
                    raise
                finally:
                    staged, self._staged = self._staged, None
                appended = self._audit.appended > before
                if staged or appended:
                    self._commit(staged, appended, appended and (defer() if callable(defer) else defer))
                if self.on_write is not None:
                    self.on_write(time.perf_counter() - started)
                return result
            except OSError as exc:  # the disk refused (full, failing): nothing of this change is acknowledged
                where = f" ({exc.filename})" if exc.filename else ""
                raise StoreUnavailable(f"{type(exc).__name__}: {exc.strerror or exc}{where}",
                                       maybe_saved=self._audit.appended > before) from exc
            finally:
                self._file_lock.release()

    def _discard(self, staged: dict[AtomicJSONStorage, dict]) -> None:
        """A change failed half-way: none of it is written. The caches it touched are dropped (they may also
        have held acknowledged deferred marks), and the next change re-reads the whole trail, which holds
        those marks, and any event the failed change appended, so the state files end up telling the trail's
        story."""
        for storage in staged:
            storage.settle(None)
            self._deferred.discard(storage)
        self._audit_seen = self._snapshot_position()

    def _catch_up(self) -> None:
        """Apply what other processes appended to the audit trail since this one last looked (their deferred
        changes are in no file yet), so this change builds on them and any file it writes holds them. Only
        what the state does not reflect yet is applied (each file's "seq")."""
        if self._audit_position() != self._audit_seen[:2]:
            self._apply_trail(self._audit_seen)

    def _stage(self, storage: AtomicJSONStorage, raw: dict) -> bool:
        if self._staged is None:
            return False  # start-up work, outside any change: written at once
        self._staged[storage] = raw  # a later write of the same file in this change supersedes it
        return True

    def _commit(self, staged: dict[AtomicJSONStorage, dict], sync_audit: bool, defer: bool) -> None:
        """The audit events to disk first (fdatasync), then the state files they add up to."""
        try:
            if sync_audit:
                self._audit.sync()
            identities = {}
            for storage, raw in staged.items():
                if defer and storage in self._municipality_storages:
                    self._defer(storage)
                else:
                    identities[storage] = storage.write_file(raw)
        except BaseException:
            # The disk refused (full, failing). The cached versions may hold acknowledged deferred marks, so
            # they are kept, as deferred, for the next checkpoint to try again; and the next change re-reads
            # the whole trail, applying whatever the files still lack.
            for storage in staged:
                self._defer(storage)
            self._audit_seen = self._snapshot_position()
            raise
        for storage, identity in identities.items():
            storage.settle(identity)
            self._deferred.discard(storage)

    def _defer(self, storage: AtomicJSONStorage) -> None:
        """The file's newest version stays cached, for the next checkpoint to write."""
        storage.defer()
        self._deferred.add(storage)

    def _write_cached_versions(self) -> None:
        """Inside a change: write now every file whose newest version is only cached (staged or deferred)."""
        self._audit.sync()
        staged = self._staged or {}
        for storage, raw in list(staged.items()):
            storage.settle(storage.write_file(raw))
            del staged[storage]
        self._flush_deferred()

    async def checkpoint(self) -> int:
        """Write the municipality files whose newest version is only cached, and catch up with what other
        processes appended to the trail; returns how many files were written. `serve` calls it every second
        and when it stops, so neither its files nor its reads lag more than that; a crash before it loses
        nothing (start-up replays the trail). Now and then it also takes a snapshot (`_snapshot`)."""
        lines, at = self._last_snapshot
        due = self._audit_seen[2] - lines >= SNAPSHOT_EVERY_EVENTS or (
            self._audit_seen[2] != lines and time.monotonic() - at >= SNAPSHOT_EVERY_SECONDS)
        if not self._deferred and self._audit_position() == self._audit_seen[:2] and not due:
            return 0
        return await self._write(self._flush_and_snapshot, due)

    def _flush_and_snapshot(self, snapshot: bool) -> int:
        written = self._flush_deferred()
        if snapshot and not self._deferred:
            self._snapshot()
        return written

    def _snapshot(self) -> None:
        """Record the trail position every state file now reflects, so start-up and recovery read only what
        came after. The files are fsynced first (municipality files are written without it, and another process
        may have written one): the position must never claim more than a power loss would leave."""
        self._write_cached_versions()
        for path in self.municipalities_dir.glob("*.json"):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(self.municipalities_dir)
        _, offset, lines = self._audit_seen
        with self.audit_path.open("rb") as fh:
            fh.seek(max(0, offset - 64))
            tail = fh.read(min(offset, 64))
        write_atomically(self.snapshot_path, encode({"offset": offset, "lines": lines, "tail": tail.hex()}), sync=True)
        self._last_snapshot = (lines, time.monotonic())

    def _flush_deferred(self) -> int:
        written = 0
        for storage in list(self._deferred):
            storage.flush()
            written += not storage.deferred
        self._deferred = {s for s in self._deferred if s.deferred}
        return written

    async def writable(self) -> bool:
        """Whether a byte can be written and synced in the data dir now (for /readyz): a full disk says no."""
        return await asyncio.to_thread(self._writable)

    def _writable(self) -> bool:
        probe = self.data_dir / f".probe-{os.getpid()}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b"1")
                os.fsync(fd)
            finally:
                os.close(fd)
                probe.unlink(missing_ok=True)
        except OSError:
            return False
        return True

    def close(self) -> None:
        """Release the descriptors the store keeps open (the trail's, the lock's). Call `checkpoint` first; a
        clean stop leaves a snapshot, so the next start reads nothing of the trail."""
        if self._audit_seen[2] != self._last_snapshot[0] and self.audit_path.exists():
            try:
                with self._file_lock:
                    self._freshness.expire()
                    self._catch_up()
                    if not self._deferred:
                        self._snapshot()
            except (OSError, StoreError):
                pass  # no snapshot: the next start reads on from the previous one
        self._audit.close()
        self._file_lock.close()

    def _open(self, path: Path, sync: bool = True) -> TinyDB:
        """sync: fsync the file before its rename. Needed where the trail cannot rebuild the file (on some file
        systems a rename without it can leave an empty file after a power loss); municipality files can
        skip it, their content is the trail's (a self-check in progress at most would be asked again)."""
        return TinyDB(path, storage=AtomicJSONStorage, sync=sync, stage=self._stage, freshness=self._freshness)

    def _db_of(self, table: str) -> TinyDB:
        return self._dbs.get(table, self._db)

    def _storage_of(self, table: str) -> AtomicJSONStorage:
        return _atomic(self._db_of(table))

    def _find(self, table: str, field: str, value: Any, storage: AtomicJSONStorage | None = None) -> dict | None:
        """The first document of `table` whose `field` is `value`: a dict lookup, not TinyDB's scan. The
        document is the cache's own: build new objects from it, never hand it out or change it."""
        docs = (storage or self._storage_of(table)).index(table, field).get(value)
        return docs[0] if docs else None

    def _doc_id(self, table: str, key_field: str, value: Any) -> int | None:
        ids = self._storage_of(table).memo(
            ("ids", table, key_field), lambda data: {d.get(key_field): int(i) for i, d in (data.get(table) or {}).items()})
        return ids.get(value)

    def _put(self, table: str, key_field: str, doc: dict) -> None:
        """Insert or update the document whose `key_field` is doc's, by its TinyDB id: one file write and no
        scan (TinyDB's upsert on a new key writes twice: an update that finds nothing, then the insert)."""
        doc_id = self._doc_id(table, key_field, doc[key_field])
        if doc_id is None:
            # The next id from the file as it is now: TinyDB's Table remembers its own, which another
            # process's insert makes stale ("Document with ID 2 already exists").
            ids = (self._db_of(table).storage.read() or {}).get(table) or {}
            self._table(table).insert(Document(doc, doc_id=max(map(int, ids), default=0) + 1))
        else:
            self._table(table).update(doc, doc_ids=[doc_id])

    def _storage(self, code: str) -> AtomicJSONStorage:
        self._mtable(code)
        return _atomic(self._municipality_dbs[code])

    def _municipality_doc(self, code: str) -> dict | None:
        return self._find("municipality", "code", code, self._storage(code))

    def _table(self, name: str):
        # No query cache: another process (the nudges command, an admin command) may have written.
        return self._db_of(name).table(name, cache_size=0)

    def _mtable(self, code: str):
        """One municipality's own file: marking a task rewrites that municipality's state, not all 98."""
        db = self._municipality_dbs.get(code)
        if db is None:
            if not _CODE.fullmatch(code or ""):
                raise ValueError(f"not a municipality code: {code!r}")
            db = self._open(self.municipalities_dir / f"{code}.json", sync=False)
            self._municipality_storages.add(_atomic(db))
            self._municipality_dbs[code] = db
        return db.table("municipality", cache_size=0)

    def _codes_on_disk(self) -> list[str]:
        return sorted(p.stem for p in self.municipalities_dir.glob("*.json") if _CODE.fullmatch(p.stem))

    def _migrate(self) -> None:
        """Older data dirs kept every table in state.json: move each to its own file. Each file is written
        before the table leaves state.json, so a crash half-way just redoes the move."""
        if not {"municipalities", *OWN_FILES} & set(self._db.storage.read() or {}):
            return
        with self._file_lock:
            self._freshness.expire()
            old = self._db.storage.read() or {}
            for doc in (old.get("municipalities") or {}).values():
                self._save_municipality(doc["code"], dict(doc))
            for name in OWN_FILES:
                if name in old:
                    self._dbs[name].storage.write({name: {**(self._dbs[name].storage.read() or {}).get(name, {}), **old[name]}})
            for name in ("municipalities", *OWN_FILES):
                if name in (self._db.storage.read() or {}):
                    self._db.drop_table(name)

    # -- registrations ----------------------------------------------------------------------------
    async def registration(self, scope: str) -> Registration | None:
        doc = self._find("registrations", "scope", scope)
        if not doc:
            return None
        return Registration(scope=doc["scope"], code=doc["code"], tenant_id=doc.get("tenant_id"),
                            by=_actor(doc["by"]), at=doc["at"])

    async def register(self, registration: Registration, conversation: str) -> str | None:
        def put():
            # Check and bind in one locked step: two tenants racing for one municipality cannot both win.
            bound = (self._municipality_doc(registration.code) or {}).get("tenant_id")
            if bound and bound != registration.tenant_id:
                return bound
            # A copy: the cached row is updated in place by the write below.
            previous = dict(self._find("registrations", "scope", registration.scope) or {})
            event = AuditEvent(registration.code, "register", None, registration.by, registration.at, conversation,
                               scope=registration.scope, tenant_id=registration.tenant_id)
            self._apply(event, self._append_audit(event))
            if previous and previous["code"] != registration.code:
                self._release_if_unused(previous["code"], previous.get("tenant_id"), registration)
            return None
        return await self._write(put)

    def _release_if_unused(self, code: str, tenant_id: str | None, by: Registration) -> None:
        """A scope moved to another municipality: if its tenant has no other registration for the old one,
        the old one is free again (a mistaken "tilmeld" must not lock the real owner out). Audited."""
        registrations = self._storage_of("registrations").index("registrations", "code").get(code, [])
        users = [r for r in registrations if r.get("tenant_id") == tenant_id]
        if users or not tenant_id or (self._municipality_doc(code) or {}).get("tenant_id") != tenant_id:
            return
        event = AuditEvent(code, "rebind", None, by.by, by.at, f"released-by:{by.scope}", tenant_id="")
        self._apply(event, self._append_audit(event))

    async def codes_for_tenant(self, tenant_id: str) -> list[str]:
        rows = self._storage_of("registrations").index("registrations", "tenant_id").get(tenant_id, [])
        return sorted({d["code"] for d in rows})

    # -- progress ---------------------------------------------------------------------------------
    async def municipality(self, code: str) -> MunicipalityState:
        # Built once per version of the municipality's file, and shared: MunicipalityState is read-only.
        return self._storage(code).memo(("state", code), lambda data: events.state_of(_doc_in(data, code), code))

    async def all_municipalities(self) -> list[MunicipalityState]:
        states = [await self.municipality(code) for code in self._codes_on_disk()]
        return [state for state in states if state.tenant_id]

    async def change(self, code: str, decide: Decide[T]) -> T:
        """`decide` on the state as it is under the lock (other processes' changes caught up with); its events
        appended, fdatasynced and applied before this returns. Marks alone leave the municipality's file to the
        next checkpoint (the trail restores them); other changes write it at once."""
        if not _CODE.fullmatch(code or ""):
            raise ValueError(f"not a municipality code: {code!r}")
        outcome: list[bool] = []

        def run() -> T:
            # The state as of the file's current version (other processes' events caught up), built once per version.
            decided, result = decide(self._storage(code).memo(
                ("state", code), lambda data: events.state_of(_doc_in(data, code), code)))
            decided = [replace(e, details=thawed(e.details)) if e.details is not None else e for e in decided]
            for event in decided:
                if event.code != code:
                    raise ValueError(f"an event for {event.code} in a change of {code}")
                events.check(event)  # all checked before any is written
            for event in decided:
                self._apply(event, self._append_audit(event))
            outcome.append(bool(decided) and all(e.action in ("done", "reopen") for e in decided))
            return result
        return await self._write(run, defer=lambda: bool(outcome and outcome[0]))

    # -- the audit trail is the write-ahead log; the state files are what it adds up to ----------------
    def _apply(self, event: AuditEvent, seq: int) -> None:
        """Make the state files reflect one event, the trail's line `seq`, unless they already do."""
        doc = self._municipality_doc(event.code)
        if doc is None or doc.get("seq", 0) < seq:
            self._save_municipality(event.code, _applied(doc or events.empty(event.code), event, seq))
        if event.action == "register" and event.scope:
            row = self._find("registrations", "scope", event.scope) or {}
            if row.get("seq", 0) < seq:
                self._put("registrations", "scope", _registration_row(event, seq))

    def _save_municipality(self, code: str, doc: dict) -> None:
        """Write a municipality's one document by its TinyDB id (no query scan over the table)."""
        stored = (self._storage(code).read() or {}).get("municipality") or {}
        doc_id = next((int(k) for k, d in stored.items() if d.get("code") == code), 1)
        self._mtable(code).upsert(Document(doc, doc_id=doc_id))

    # -- audit ------------------------------------------------------------------------------------
    def _append_audit(self, event: AuditEvent) -> int:
        """Append (the caller holds the file lock); returns the event's line number in the trail. `_write`
        fsyncs before acknowledging."""
        events.check(event)  # an event replay would refuse (say, a milestone without details) is never written
        end = self._audit.append(encode(_event_dict(event)) + b"\n")
        self._audit_seen = (self._audit.inode, end, self._audit_seen[2] + 1)
        return self._audit_seen[2]

    async def audit(self, code: str, task_id: str | None = None, limit: int = 20) -> list[AuditEvent]:
        """From the municipality file's history index (its newest HISTORY_KEEP events, and per task), never
        the trail: as fast with a million events as with ten."""
        history = (self._municipality_doc(code) or {}).get("history") or {}
        kept = (history.get("tasks") or {}).get(task_id) if task_id else history.get("all")
        return [_event(d) for d in reversed((kept or [])[-limit:])]

    # -- per-user and per-conversation memory -----------------------------------------------------
    async def language(self, user_id: str) -> str | None:
        doc = self._find("preferences", "user_id", user_id)
        return doc.get("language") if doc else None

    async def set_language(self, user_id: str, language: str) -> None:
        await self._write(lambda: self._put("preferences", "user_id", {"user_id": user_id, "language": language}))

    def _thread_now(self, conversation: str) -> ThreadContext:
        doc = self._find("lists", "conversation", conversation)
        if not doc:
            return ThreadContext()
        return ThreadContext(tuple(doc.get("task_ids") or ()), doc.get("last_task"), thawed(doc.get("pending")),
                             doc.get("last_task_by"), doc.get("last_task_at"))

    async def thread(self, conversation: str) -> ThreadContext:
        return self._thread_now(conversation)

    def _put_thread(self, conversation: str, new: ThreadContext) -> None:
        lists = self._table("lists")
        old_id = self._doc_id("lists", "conversation", conversation)
        if old_id is not None:
            lists.remove(doc_ids=[old_id])  # re-inserted below with the newest id: ids order lists by last use
        self._put("lists", "conversation", {
            "conversation": conversation, "task_ids": list(new.task_ids), "last_task": new.last_task,
            "pending": thawed(new.pending), "last_task_by": new.last_task_by, "last_task_at": new.last_task_at})
        if len(lists) > LIST_LIMIT:  # the smallest ids: the threads whose lists were shown longest ago
            lists.remove(doc_ids=sorted(doc.doc_id for doc in lists.all())[:len(lists) - LIST_LIMIT])

    async def update_thread(self, conversation: str, **changes: Any) -> None:
        current = self._thread_now(conversation)
        if replace(current, **changes) == current:
            return  # "hvad skal vi nu?" twice, the same task named again: nothing to write

        def write():  # read again under the lock: another process may have changed the thread meanwhile
            current = self._thread_now(conversation)
            new = replace(current, **changes)
            if new != current:
                self._put_thread(conversation, new)
        await self._write(write)

    async def take_pending(self, conversation: str, user: str, now: datetime, asked: str | None = None) -> dict | None:
        def take():
            current = self._thread_now(conversation)
            pending = current.pending
            if not open_question(pending, user, now):
                return None
            if asked is not None and pending.get("id") != asked:
                return None  # the "Ja" of an older question
            self._put_thread(conversation, replace(current, pending=None))
            return dict(pending)
        return await self._write(take)

    async def last_list(self, conversation: str) -> list[str]:
        return list((await self.thread(conversation)).task_ids)

    async def set_last_list(self, conversation: str, task_ids: list[str]) -> None:
        """Remember the numbers just shown. The same list again writes nothing ("hvad skal vi nu?" twice)."""
        await self.update_thread(conversation, task_ids=tuple(task_ids))

    # -- operator commands (python -m bot admin ...) ----------------------------------------------
    async def rebind(self, code: str, tenant_id: str, by: Actor, at: str) -> str | None:
        """Bind a municipality to another tenant; returns the previous tenant. Audited."""
        def change():
            previous = (self._municipality_doc(code) or {}).get("tenant_id")
            event = AuditEvent(code, "rebind", None, by, at, f"tenant:{previous or '-'}->{tenant_id}", tenant_id=tenant_id)
            self._apply(event, self._append_audit(event))
            return previous
        return await self._write(change)

    async def forget_user(self, user_id: str, pseudonym: Actor, by: Actor, at: str) -> int:
        """GDPR erasure: the person becomes `pseudonym` everywhere and loses their preferences.

        Returns how many audit events named them. The audit file is rewritten atomically, so a crash
        leaves either the old trail or the new one."""
        def erase():
            replaced = _actor_dict(pseudonym)
            # The trail first: if this fails half-way, the change is discarded and nothing names them less.
            count, codes = self._pseudonymise_trail(user_id, replaced)
            for code in sorted(set(self._codes_on_disk()) | set(self._municipality_dbs)):
                doc = self._municipality_doc(code)
                if doc:  # tasks, assignments, the self-check, the history index: wherever they are named
                    erased = _pseudonymised(doc, user_id, replaced)
                    if erased != doc:
                        self._save_municipality(code, erased)
            self._table("registrations").update({"by": replaced}, Query().by.id == user_id)
            conversations = self._table("conversations")
            for doc in conversations.all():
                user = (doc.get("reference") or {}).get("user") or {}
                if user_id in (user.get("id"), user.get("aadObjectId")):
                    conversations.update({"reference": {**doc["reference"], "user": None}}, Query().key == doc["key"])
            self._table("preferences").remove(Query().user_id == user_id)
            # A change the bot asked them about ("Mener du …?") is forgotten with them.
            # So is a question about them ("Skal jeg sætte Lars …?" holds Lars's id and name until answered).
            self._table("lists").update({"pending": None}, Query().pending.test(
                lambda p: bool(p) and (p.get("user") == user_id or user_id.encode() in encode(p))))
            self._table("lists").update({"last_task_by": None, "last_task_at": None}, Query().last_task_by == user_id)
            for code in sorted(codes):
                self._append_audit(AuditEvent(code, "forget", None, by, at, f"person:{pseudonym.id}"))
            return count
        return await self._write(erase)

    def _pseudonymise_trail(self, user_id: str, replaced: dict) -> tuple[int, set[str]]:
        """Rewrite the trail (atomically, fsynced) with the person replaced; a torn last line, never
        acknowledged, is left out. Returns how many events named them and their municipalities."""
        count, lines, codes = 0, [], set()
        for raw in _complete_lines(self.audit_path):
            event = decode(raw)
            named = event.get("by", {}).get("id") == user_id
            person = (event.get("details") or {}).get("person")
            if named:
                event["by"] = replaced
            if person and person.get("id") == user_id:  # assigned as ansvarlig/udfører
                event["details"] = {**event["details"], "person": replaced}
                named = True
            if named:
                count += 1
                codes.add(event["code"])
            lines.append(encode(event) + b"\n")
        if self.audit_path.exists():
            write_atomically(self.audit_path, b"".join(lines), sync=True)
        return count, codes

    async def backup(self, target: Path) -> list[Path]:
        """A consistent copy of the data dir, taken under the same lock writers hold."""
        def copy():
            self._write_cached_versions()  # deferred marks, and what catching up with others just applied
            target.mkdir(parents=True, exist_ok=True)
            copied = []
            (target / "municipalities").mkdir(exist_ok=True)
            self._snapshot()  # the copy starts without reading its trail
            sources = [self.state_path, *(self.data_dir / f"{name}.json" for name in OWN_FILES), self.audit_path,
                       self.snapshot_path,
                       *(self.municipalities_dir / f"{c}.json" for c in self._codes_on_disk())]
            for source in sources:
                if source.exists():
                    destination = target / source.relative_to(self.data_dir)
                    write_atomically(destination, source.read_bytes(), sync=True)
                    copied.append(destination)
            return copied
        return await self._write(copy)

    # -- export links: one process serves the data dir, so memory is enough ---------------------------------
    async def put_export(self, token: str, name: str, data: bytes, ttl: timedelta) -> None:
        self._exports.keep(token, name, data, ttl.total_seconds())

    async def get_export(self, token: str) -> tuple[str, bytes] | None:
        return self._exports.find(token)

    async def claim_greeting(self, conversation: str, now: datetime, quiet: timedelta) -> bool:
        """In memory: one process serves a data dir."""
        last = self._greeted.get(conversation)
        if last and now - last < quiet:
            return False
        self._greeted = {k: v for k, v in self._greeted.items() if now - v < quiet}
        self._greeted[conversation] = now
        return True

    async def aclose(self) -> None:
        """Nothing to close before `close`: the store's descriptors are released there."""

    # -- proactive messages: where they can go and which were sent ------------------------------------
    def conversation_known(self, key: str, fingerprint: tuple) -> bool:
        """True when this process last stored this conversation with the same fingerprint and it is active:
        then the caller need not even build the reference. A deactivation forgets the fingerprint."""
        if self._conversation_seen.get(key) != fingerprint:
            return False
        # Another process (a sweep that met a 403) may have deactivated it since: then it must be stored again.
        return (self._find("conversations", "key", key) or {}).get("active", True)

    async def remember_conversation(self, record: ConversationRecord, fingerprint: tuple | None = None) -> None:
        """Keep the newest reference for a conversation; a turn that changes nothing writes nothing."""
        fingerprint = fingerprint or (record.code, json.dumps(record.reference, sort_keys=True), record.language)
        if self.conversation_known(record.key, fingerprint):
            return

        def write():
            doc = asdict(record)
            if self._find("conversations", "key", record.key) != doc:
                self._put("conversations", "key", doc)
        await self._write(write)
        self._conversation_seen[record.key] = fingerprint

    async def conversations(self) -> list[ConversationRecord]:
        return [ConversationRecord(**d) for d in self._table("conversations").all() if d.get("active", True)]

    async def deactivate_conversation(self, key: str) -> None:
        """The bot was removed there (or the Connector answers 403/404): no more proactive messages."""
        self._conversation_seen.pop(key, None)

        def write():
            doc = self._find("conversations", "key", key)
            if doc and doc.get("active", True):
                self._put("conversations", "key", {**doc, "active": False})
        await self._write(write)

    async def sent_nudges(self) -> set[str]:
        return {d["key"] for d in self._table("nudges").all() if d.get("state") == "sent"}

    async def claim_nudge(self, key: str, owner: str, at: str, stale_before: str) -> bool:
        """Take a nudge for sending, at most one sender at a time, across processes.

        A claim older than `stale_before` belonged to a sender that died; it may be taken over."""
        def claim():
            doc = self._find("nudges", "key", key)
            if doc and (doc["state"] == "sent" or doc["at"] >= stale_before):
                return False
            self._put("nudges", "key", {"key": key, "state": "claimed", "owner": owner, "at": at})
            return True
        return await self._write(claim)

    async def finish_nudge(self, key: str, owner: str, sent: bool, at: str) -> None:
        """Sent: never again. Not sent: the claim is dropped so a later sweep tries again."""
        def finish():
            if sent:
                self._put("nudges", "key", {"key": key, "state": "sent", "owner": owner, "at": at})
                return
            doc = self._find("nudges", "key", key)
            if doc and doc["owner"] == owner and doc["state"] == "claimed":
                self._table("nudges").remove(doc_ids=[self._doc_id("nudges", "key", key)])
        await self._write(finish)

    async def wave_signature(self, wave_id: str) -> str | None:
        doc = self._find("waves", "id", wave_id)
        return doc["signature"] if doc else None

    async def set_wave_signature(self, wave_id: str, signature: str) -> None:
        await self._write(lambda: self._put("waves", "id", {"id": wave_id, "signature": signature}))
