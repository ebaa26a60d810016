"""The store on disk: TinyDB for current state, an append-only JSON-lines file for the audit trail.

Why this split: TinyDB rewrites its whole file on every write, so it holds only what stays small (98
municipalities' task states, registrations, preferences). The audit trail grows forever, so it is
appended to, never rewritten. Every write is atomic (temp file, fsync, rename, fsync dir) and runs under
a cross-process file lock, so `serve` and a command on the same data dir cannot tear each other's
writes. Blocking file work runs in a worker thread so the event loop keeps serving.
"""
from __future__ import annotations

import asyncio
import json
import os
import threading
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from filelock import FileLock
from tinydb import Query, TinyDB
from tinydb.storages import Storage

from dialogs.store import Actor, AuditEvent, MunicipalityState, Registration, TaskChange, TaskState


class StoreError(Exception):
    """The data dir cannot be used as it is. The message names the file; the file is left untouched."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicJSONStorage(Storage):
    """TinyDB storage whose write is all-or-nothing: a crash leaves the old file or the new one."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> dict | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        if not text.strip():
            return None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise StoreError(f"{self.path}: not valid JSON ({exc}); the file was left untouched") from None
        if not isinstance(data, dict):
            raise StoreError(f"{self.path}: expected a JSON object; the file was left untouched")
        return data

    def write(self, data: dict) -> None:
        self.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")))

    def write_text(self, text: str) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)

    def close(self) -> None:
        pass


def _actor(d: dict) -> Actor:
    return Actor(id=d.get("id", ""), name=d.get("name", ""))


def _task_state(d: dict) -> TaskState:
    return TaskState(done=bool(d["done"]), by=_actor(d["by"]), at=d["at"], conversation=d.get("conversation", ""))


class TinyStore:
    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.data_dir / "state.json"
        self.audit_path = self.data_dir / "audit.jsonl"
        self._file_lock = FileLock(str(self.data_dir / ".lock"))
        self._thread_lock = threading.Lock()
        self._db = TinyDB(self.state_path, storage=AtomicJSONStorage)
        self._check_readable()

    def _check_readable(self) -> None:
        """Fail at start-up, naming the file, rather than at the first user's message."""
        self._db.storage.read()
        if not self.audit_path.exists():
            return
        good_end = 0
        with self.audit_path.open("rb") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.endswith(b"\n"):
                    break  # a torn last line from a crash mid-append: that write was never acknowledged
                try:
                    json.loads(line)
                except ValueError:
                    raise StoreError(f"{self.audit_path}: line {number} is not valid JSON; the file was left untouched") from None
                good_end = fh.tell()
        if good_end < self.audit_path.stat().st_size:
            with self.audit_path.open("r+b") as fh:  # drop only the torn, never-acknowledged tail
                fh.truncate(good_end)
                os.fsync(fh.fileno())

    async def _run(self, fn, *args) -> Any:
        return await asyncio.to_thread(self._locked, fn, *args)

    def _locked(self, fn, *args) -> Any:
        with self._thread_lock, self._file_lock:
            return fn(*args)

    def _table(self, name: str):
        return self._db.table(name)

    # -- registrations ----------------------------------------------------------------------------
    async def registration(self, scope: str) -> Registration | None:
        def get():
            doc = self._table("registrations").get(Query().scope == scope)
            if not doc:
                return None
            return Registration(scope=doc["scope"], code=doc["code"], tenant_id=doc.get("tenant_id"),
                                by=_actor(doc["by"]), at=doc["at"])
        return await self._run(get)

    async def register(self, registration: Registration, conversation: str) -> str | None:
        def put():
            # Check and bind in one locked step: two tenants racing for one municipality cannot both win.
            municipalities = self._table("municipalities")
            doc = municipalities.get(Query().code == registration.code)
            bound = doc.get("tenant_id") if doc else None
            if bound and bound != registration.tenant_id:
                return bound
            self._table("registrations").upsert(asdict(registration), Query().scope == registration.scope)
            if doc is None:
                municipalities.insert({"code": registration.code, "tenant_id": registration.tenant_id, "tasks": {}})
            elif not bound:
                municipalities.update({"tenant_id": registration.tenant_id}, Query().code == registration.code)
            self._append_audit(AuditEvent(registration.code, "register", None, registration.by, registration.at, conversation))
            return None
        return await self._run(put)

    async def codes_for_tenant(self, tenant_id: str) -> list[str]:
        def get():
            return sorted({d["code"] for d in self._table("registrations").search(Query().tenant_id == tenant_id)})
        return await self._run(get)

    # -- progress ---------------------------------------------------------------------------------
    async def municipality(self, code: str) -> MunicipalityState:
        def get():
            doc = self._table("municipalities").get(Query().code == code) or {"code": code}
            return MunicipalityState(
                code=code,
                tenant_id=doc.get("tenant_id"),
                phase=doc.get("phase"),
                milestones={k: date.fromisoformat(v) for k, v in (doc.get("milestones") or {}).items()},
                tasks={tid: _task_state(s) for tid, s in (doc.get("tasks") or {}).items()},
            )
        return await self._run(get)

    async def set_task(self, code: str, task_id: str, done: bool, by: Actor, at: str, conversation: str) -> TaskChange:
        def change():
            table = self._table("municipalities")
            doc = table.get(Query().code == code) or {"code": code, "tasks": {}}
            tasks = dict(doc.get("tasks") or {})
            current = tasks.get(task_id)
            if current is not None and bool(current["done"]) == done:
                return TaskChange(False, _task_state(current))
            if current is None and not done:
                return TaskChange(False, None)
            new = {"done": done, "by": asdict(by), "at": at, "conversation": conversation}
            tasks[task_id] = new
            table.upsert({**doc, "tasks": tasks}, Query().code == code)
            self._append_audit(AuditEvent(code, "done" if done else "reopen", task_id, by, at, conversation))
            return TaskChange(True, _task_state(new))
        return await self._run(change)

    # -- audit ------------------------------------------------------------------------------------
    def _append_audit(self, event: AuditEvent) -> None:
        line = json.dumps(asdict(event), ensure_ascii=False, separators=(",", ":")) + "\n"
        fresh = not self.audit_path.exists()
        with self.audit_path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        if fresh:
            _fsync_dir(self.data_dir)

    async def audit(self, code: str, task_id: str | None = None, limit: int = 20) -> list[AuditEvent]:
        def read():
            if not self.audit_path.exists():
                return []
            out = []
            with self.audit_path.open(encoding="utf-8") as fh:
                for line in fh:
                    if not line.endswith("\n"):
                        continue
                    d = json.loads(line)
                    if d["code"] == code and (task_id is None or d.get("task_id") == task_id):
                        out.append(AuditEvent(d["code"], d["action"], d.get("task_id"), _actor(d["by"]), d["at"], d.get("conversation", "")))
            return out[-limit:][::-1]  # newest first
        return await self._run(read)

    # -- per-user and per-conversation memory -----------------------------------------------------
    async def language(self, user_id: str) -> str | None:
        def get():
            doc = self._table("preferences").get(Query().user_id == user_id)
            return doc.get("language") if doc else None
        return await self._run(get)

    async def set_language(self, user_id: str, language: str) -> None:
        await self._run(lambda: self._table("preferences").upsert({"user_id": user_id, "language": language},
                                                                   Query().user_id == user_id))

    async def last_list(self, conversation: str) -> list[str]:
        def get():
            doc = self._table("lists").get(Query().conversation == conversation)
            return list(doc["task_ids"]) if doc else []
        return await self._run(get)

    async def set_last_list(self, conversation: str, task_ids: list[str]) -> None:
        await self._run(lambda: self._table("lists").upsert({"conversation": conversation, "task_ids": task_ids},
                                                             Query().conversation == conversation))

    # -- operator commands (python -m bot admin ...) ----------------------------------------------
    async def rebind(self, code: str, tenant_id: str, by: Actor, at: str) -> str | None:
        """Bind a municipality to another tenant; returns the previous tenant. Audited."""
        def change():
            table = self._table("municipalities")
            doc = table.get(Query().code == code)
            previous = doc.get("tenant_id") if doc else None
            if doc is None:
                table.insert({"code": code, "tenant_id": tenant_id, "tasks": {}})
            else:
                table.update({"tenant_id": tenant_id}, Query().code == code)
            self._append_audit(AuditEvent(code, "rebind", None, by, at, f"tenant:{previous or '-'}->{tenant_id}"))
            return previous
        return await self._run(change)

    async def forget_user(self, user_id: str, pseudonym: Actor, by: Actor, at: str) -> int:
        """GDPR erasure: the person becomes `pseudonym` everywhere and loses their preferences.

        Returns how many audit events named them. The audit file is rewritten atomically, so a crash
        leaves either the old trail or the new one."""
        def erase():
            replaced = asdict(pseudonym)
            municipalities = self._table("municipalities")
            for doc in municipalities.all():
                tasks = {tid: ({**st, "by": replaced} if st.get("by", {}).get("id") == user_id else st)
                         for tid, st in (doc.get("tasks") or {}).items()}
                if tasks != doc.get("tasks"):
                    municipalities.update({"tasks": tasks}, Query().code == doc["code"])
            self._table("registrations").update({"by": replaced}, Query().by.id == user_id)
            self._table("preferences").remove(Query().user_id == user_id)
            count, lines, codes = 0, [], set()
            if self.audit_path.exists():
                for line in self.audit_path.read_text(encoding="utf-8").splitlines():
                    event = json.loads(line)
                    if event.get("by", {}).get("id") == user_id:
                        event["by"] = replaced
                        count += 1
                        codes.add(event["code"])
                    lines.append(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
                AtomicJSONStorage(self.audit_path).write_text("".join(f"{line}\n" for line in lines))
            for code in sorted(codes):
                self._append_audit(AuditEvent(code, "forget", None, by, at, f"person:{pseudonym.id}"))
            return count
        return await self._run(erase)

    async def backup(self, target: Path) -> list[Path]:
        """A consistent copy of the data dir, taken under the same lock writers hold."""
        def copy():
            target.mkdir(parents=True, exist_ok=True)
            copied = []
            for source in (self.state_path, self.audit_path):
                if source.exists():
                    AtomicJSONStorage(target / source.name).write_text(source.read_text(encoding="utf-8"))
                    copied.append(target / source.name)
            return copied
        return await self._run(copy)
