"""The audit trail as the store's write-ahead log: appended, never rewritten in place.

An event is appended (a plain write, on the event loop, under the store's cross-process lock) and fdatasynced
before the state files it changes are written and before the change is acknowledged. A crash in between
leaves an event that start-up (or the next process to take the lock) replays into the state.

The O_APPEND descriptor stays open; it is reopened when the file was replaced (an admin `forget-user`
rewrites the trail atomically) or deleted.
"""
from __future__ import annotations

import os
from pathlib import Path

from bot.json_file import fsync_dir, write_all

# An append changes data and size only; fdatasync writes both and skips the rest of the inode's metadata.
_sync = getattr(os, "fdatasync", os.fsync)


class AuditLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None
        self.inode = 0  # of the file the descriptor writes to
        self._end = -1  # where the file ended after this process's last append
        self.appended = 0  # events appended by this process: a change compares it before and after

    def _descriptor(self) -> int:
        """The open descriptor, reopened if the path now names another file (replaced or deleted)."""
        try:
            on_disk = os.stat(self.path).st_ino
        except FileNotFoundError:
            on_disk = None
        if self._fd is not None and on_disk == os.fstat(self._fd).st_ino:
            return self._fd
        # Whoever replaced the file did so under the file lock, after reading every line appended here, and
        # every append here was synced before that lock was released: nothing is lost with the old one.
        self.close()
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)  # read: see _untear
        self.inode = os.fstat(self._fd).st_ino
        if on_disk is None:
            fsync_dir(self.path.parent)  # a new file's name must survive a crash too
        return self._fd

    def append(self, line: bytes) -> int:
        """Write one event line; returns where the file now ends. The caller holds the file lock (so the
        end is its line's) and calls `sync` before acknowledging."""
        fd = self._descriptor()
        size = os.fstat(fd).st_size
        if size != self._end:  # someone else wrote since: a process that died mid-append may have left half a line
            size = self._untear(fd, size)
        try:
            write_all(fd, line)
        except OSError:
            os.ftruncate(fd, size)  # no half line of ours either (disk full): it was never acknowledged
            raise
        self.appended += 1
        self._end = os.lseek(fd, 0, os.SEEK_CUR)  # O_APPEND moved the offset to the end, past our line
        return self._end

    def cut_torn_tail(self) -> None:
        """Start-up, with the file lock held: a last line without its newline was left by a crash mid-append
        (never acknowledged, and nobody is appending now), so it goes."""
        if not self.path.exists():
            return
        fd = self._descriptor()
        size = os.fstat(fd).st_size
        self._end = self._untear(fd, size)
        if self._end < size:
            os.fsync(fd)

    @staticmethod
    def _untear(fd: int, size: int) -> int:
        """Cut a torn last line (its writer died before finishing it, so it was never acknowledged); with the
        file lock held nobody is writing one now. Otherwise our line would be glued to it, and the trail
        would hold a corrupt line that stops the next start-up."""
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return size
        end = size
        while end > 0:
            chunk = os.pread(fd, min(end, 65536), end - min(end, 65536))
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                end = end - len(chunk) + newline + 1
                break
            end -= len(chunk)
        if end < size:
            os.ftruncate(fd, end)
        return end

    def sync(self) -> None:
        if self._fd is not None:
            _sync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
