"""`python -m bench.profiled_bot STATS_FILE`: `python -m bot serve` under cProfile, worker threads included.

Why not `python -m cProfile -m bot serve`: that profiles the main thread only, and work may run in
asyncio's worker threads (MSAL token fetches, the history command's read of the audit trail). So each worker
thread gets its own profiler, enabled only while it runs a work item (never while it idles on the queue, and never left open mid-call when the server stops,
which would corrupt the merge). All profilers use time.thread_time, the thread's own user+system CPU: a
wall clock would charge epoll waits, GIL waits and fsync waits as if they were work. The profiles are
merged and written when the server stops (SIGINT).
"""
from __future__ import annotations

import cProfile
import pstats
import sys
import threading
import time
from concurrent.futures import thread as futures_thread

_profiles: list[cProfile.Profile] = []
_local = threading.local()
_original_run = futures_thread._WorkItem.run


def _profiled_run(self) -> None:
    profile = getattr(_local, "profile", None)
    if profile is None:
        profile = _local.profile = cProfile.Profile(timer=time.thread_time)
        _profiles.append(profile)
    profile.enable()
    try:
        _original_run(self)
    finally:
        profile.disable()


def main() -> int:
    out = sys.argv[1]
    futures_thread._WorkItem.run = _profiled_run
    from bot.__main__ import main as bot_main

    main_profile = cProfile.Profile(timer=time.thread_time)
    main_profile.enable()
    try:
        code = bot_main(["serve"])
    finally:
        main_profile.disable()
        stats = pstats.Stats(main_profile)
        for profile in _profiles:
            stats.add(profile)
        stats.dump_stats(out)
    return code


if __name__ == "__main__":
    sys.exit(main())
