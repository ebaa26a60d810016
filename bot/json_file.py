"""TinyDB's storage for the store's state files: atomic replaces, a parsed-file cache, and lookup indexes.

A state file is rewritten whole (that is TinyDB), so each is kept small: one per municipality, and one per
other kind of state (bot/store.py). The write is temp file + rename, so a reader (this process or another)
sees the old file or the new one, never half of one. Whether the temp file is fsynced first is the
caller's choice: municipality files are not (the audit trail, fsynced before a change is acknowledged,
rebuilds them at start-up); the other files, and copies made by admin commands, are.

Inside a store change, a write is staged rather than done: `stage` takes the bytes, reads see the staged
version, and the store writes the file when the change is complete (once, however often TinyDB wrote it
during the change, and after the change's audit events are fsynced), then calls `settle`.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tinydb.storages import Storage

from bot import json_text


class StoreError(Exception):
    """The data dir cannot be used as it is. The message names the file; the file is left untouched."""



def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """os.write until all of `data` is written (one call may write less)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_atomically(path: Path, data: bytes, sync: bool) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if sync:
        fsync_dir(path.parent)


class _Parsed:
    """One version of a file, parsed, with the indexes built on it so far."""

    __slots__ = ("data", "identity", "indexes")

    def __init__(self, identity: tuple | None, data: dict):  # None: a version staged before any file existed
        self.identity = identity
        self.data = data
        self.indexes: dict[tuple, Any] = {}  # what index() and memo() built on this version


class Freshness:
    """How long a file checked against the disk stays trusted: a turn reads the same files several times,
    and each check is a stat(). Another process's write seen up to `max_age` late is the same as a read
    that happened that much earlier: readers are not ordered with other processes' writers anyway. A store
    calls `expire` when it takes the file lock, so everything read inside a change is checked."""

    def __init__(self, max_age: float = 0.002):
        self.max_age = max_age
        self.epoch = 0

    def expire(self) -> None:
        self.epoch += 1


class AtomicJSONStorage(Storage):
    """TinyDB storage whose write is all-or-nothing: a crash leaves the old file or the new one.

    Reads come from a cache of the parsed file, valid while the file's identity (inode, mtime, size) is
    unchanged; an atomic replace, ours or another process's, gives a new inode, so a read costs a stat().

    A version may be newer than the file: staged (a store change is running; reads trust it without looking
    at the disk) or deferred (the change is done and its audit events are on disk, but the file is written
    later, by `flush`). A deferred version stays ours only while the file is the one it was built on: if
    another process replaced the file, that process had first caught up with the audit trail, so its file
    holds our changes too, and it wins."""

    def __init__(self, path: Path, sync: bool = True,
                 stage: Callable[[AtomicJSONStorage, dict], bool] | None = None,
                 freshness: Freshness | None = None):
        self.path = Path(path)
        self._fspath = str(self.path)  # stat() on every read: skip Path's conversion each time
        self.sync = sync
        self._stage = stage  # returns True when it took the write (a store change is running)
        self._freshness = freshness
        self._checked = (-1, 0.0)  # (freshness epoch, monotonic time) of the last check against the disk
        self._parsed: _Parsed | None = None  # its identity: the file it was read from or built on (None: none)
        self._staged = False
        # The cached version when the file does not hold it yet. Encoded only when written: a municipality's file
        # (its history index included) changes on every mark but is written once a checkpoint.
        self._unwritten: dict | None = None

    @property
    def deferred(self) -> bool:
        return self._unwritten is not None and not self._staged

    def _identity(self) -> tuple | None:
        try:
            st = os.stat(self._fspath)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _trusted(self) -> bool:
        fresh = self._freshness
        if fresh is None or self._parsed is None:
            return False
        epoch, at = self._checked
        return epoch == fresh.epoch and time.monotonic() - at < fresh.max_age

    def _current(self) -> _Parsed | None:
        if self._staged or self._trusted():
            return self._parsed
        if self._freshness is not None:
            self._checked = (self._freshness.epoch, time.monotonic())
        identity = self._identity()
        if self._parsed is not None and self._parsed.identity == identity:
            return self._parsed  # unchanged on disk: the cache, deferred changes included
        self._unwritten = None  # replaced by another process (see the class comment), or never cached
        data = self._parse() if identity is not None else None
        self._parsed = _Parsed(identity, data) if data is not None else None
        return self._parsed

    def read(self) -> dict | None:
        parsed = self._current()
        return parsed.data if parsed else None

    def index(self, table: str, field: str) -> dict[Any, list[dict]]:
        """The documents of `table` by their `field`, built once per version of the file. The documents are
        the cache's own: read them, never change them."""
        parsed = self._current()
        if parsed is None:
            return {}
        index = parsed.indexes.get((table, field))
        if index is None:
            index = {}
            for doc in (parsed.data.get(table) or {}).values():
                index.setdefault(doc.get(field), []).append(doc)
            parsed.indexes[(table, field)] = index
        return index

    def memo(self, key: tuple, build) -> Any:
        """`build(data)`, computed once per version of the file (e.g. a municipality's task states)."""
        parsed = self._current()
        if parsed is None:
            return build({})
        if key not in parsed.indexes:
            parsed.indexes[key] = build(parsed.data)
        return parsed.indexes[key]

    def _parse(self) -> dict | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if not raw.strip():
            return None
        try:
            data = json_text.loads(raw)
        except ValueError as exc:
            raise StoreError(f"{self.path}: not valid JSON ({exc}); the file was left untouched") from None
        if not isinstance(data, dict):
            raise StoreError(f"{self.path}: expected a JSON object; the file was left untouched")
        return data

    def write(self, data: dict) -> None:
        base = self._parsed.identity if self._parsed else self._identity()
        self._parsed = None  # TinyDB changed what read() returned: if this write fails, that copy is wrong
        if self._stage is not None and self._stage(self, data):
            self._parsed, self._staged, self._unwritten = _Parsed(base, data), True, data
            return
        self.settle(self.write_file(data), data)

    def write_file(self, data: dict) -> tuple | None:
        """Replace the file with `data`, encoded now; returns the new file's identity."""
        write_atomically(self.path, json_text.dumps(data), self.sync)
        return self._identity()

    def settle(self, identity: tuple | None, data: dict | None = None) -> None:
        """The staged or deferred version (or `data`) is now the file with this identity; None: the write
        failed, so the next read parses the file again."""
        data = self._parsed.data if data is None and self._parsed else data
        self._staged, self._unwritten = False, None
        self._parsed = _Parsed(identity, data) if identity and data is not None else None

    def defer(self) -> None:
        """The staged version stays in the cache only, until `flush`."""
        self._staged = False

    def flush(self) -> None:
        """Write a deferred version, if it is still ours (see the class comment)."""
        if self.deferred and self._current() is not None and self._unwritten is not None:
            self.settle(self.write_file(self._unwritten))

    def close(self) -> None:
        pass
