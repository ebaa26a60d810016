"""The data dir's cross-process lock: flock(2) on a descriptor kept open for the life of the store.

Why not the filelock package (the usual choice, and what this used first): filelock 4 opens the lock file,
tracks forks, polls and closes again on every acquisition, which measured 0.07 ms per acquire and release
idle and 0.25 ms under load, as much as bare aiohttp's whole turn. With the descriptor open, taking and
releasing the lock is two system calls (~1 µs). It is the same advisory flock filelock uses on Linux,
so the lock means the same to every process. POSIX only, like the deployment.
"""
from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path


class ProcessLock:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def _descriptor(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        return self._fd

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self._descriptor(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def acquire(self) -> None:
        """Blocks until no other process holds it: on an event loop, use `acquire_async`."""
        fcntl.flock(self._descriptor(), fcntl.LOCK_EX)

    async def acquire_async(self) -> None:
        """Waits without blocking the loop. Polls rather than blocking in a thread: a thread cannot be
        cancelled, and one that took the lock after its caller gave up would hold it for good."""
        delay = 0.001
        while not self.try_acquire():  # another process is writing
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    def release(self) -> None:
        fcntl.flock(self._descriptor(), fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock too, if held
            self._fd = None

    def __enter__(self) -> ProcessLock:
        self.acquire()
        return self

    def __exit__(self, *_) -> None:
        self.release()
