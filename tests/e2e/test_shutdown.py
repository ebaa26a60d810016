"""SIGTERM under load (issue 15): a real `python -m bot serve` process takes a burst of marks from three
conversations; SIGTERM arrives in the middle. It stops accepting, lets the turns in flight finish, checkpoints
and exits 0 within 10 seconds; after it, every mark that was acknowledged (HTTP 2xx) is in the data."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from aiohttp import ClientConnectionError, ClientSession, ClientTimeout

from bot.store import TinyStore
from content import load_content
from tests.harness import BotServer, Connector, free_port, personal, stored_municipalities

ROOT = Path(__file__).resolve().parents[2]
MUNICIPALITIES = ("Aarhus", "Odense", "Vejle")



async def _wait_up(session: ClientSession, url: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.returncode is None, "the bot exited at start-up"
        try:
            async with session.get(f"{url}/readyz") as response:
                if response.status == 200:
                    return
        except ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the bot did not become ready")


async def test_sigterm_during_a_burst_exits_0_in_time_and_keeps_every_acknowledged_mark(tmp_path):
    connector = Connector()
    await connector.start()
    data_dir, port = tmp_path / "data", free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "BOT_DATA_DIR": str(data_dir),
           "BOT_NUDGE_INTERVAL_MINUTES": "0", "MicrosoftAppId": "", "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "serve", cwd=ROOT, env=env,
                                                   stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    maker = BotServer(data_dir=data_dir, connector=connector)  # builds activities only; its own app never starts
    tasks = load_content().tasks
    acknowledged: set[tuple[int, str]] = set()
    try:
        async with ClientSession(timeout=ClientTimeout(total=20)) as session:
            await _wait_up(session, url, process)
            for n, name in enumerate(MUNICIPALITIES, start=1):
                async with session.post(f"{url}/api/messages", json=maker.message(f"tilmeld {name}", personal(n))) as r:
                    assert r.status < 300

            queue = [(n, task) for task in tasks for n in range(1, len(MUNICIPALITIES) + 1)]
            started_enough = asyncio.Event()

            async def marker() -> None:
                """Six people marking as fast as the bot answers, until the queue is empty or the bot is gone."""
                while queue:
                    n, task = queue.pop(0)
                    body = maker.message(f"marker {task.title.da} som udført", personal(n))
                    try:
                        async with session.post(f"{url}/api/messages", json=body) as response:
                            if 200 <= response.status < 300:
                                acknowledged.add((n, task.id))
                    except (TimeoutError, ClientConnectionError):
                        pass  # refused or cut off: not acknowledged, so nothing is promised
                    if len(acknowledged) >= 12:
                        started_enough.set()

            burst = [asyncio.create_task(marker()) for _ in range(6)]
            await asyncio.wait_for(started_enough.wait(), 20)  # well into the burst, with requests in flight
            sent_at = time.monotonic()
            process.send_signal(signal.SIGTERM)
            await asyncio.gather(*burst)
            returncode = await asyncio.wait_for(process.wait(), 10)
            took = time.monotonic() - sent_at
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await connector.stop()
    stderr = (await process.stderr.read()).decode(errors="replace")
    print(f"\nSIGTERM mid-burst: exit {returncode} after {took:.2f} s, {len(acknowledged)} of "
          f"{len(tasks) * len(MUNICIPALITIES)} marks acknowledged")  # README "Trust"
    assert returncode == 0, stderr[-2000:]
    assert took < 10, took
    assert 0 < len(acknowledged) < len(tasks) * len(MUNICIPALITIES), len(acknowledged)  # SIGTERM came mid-burst

    code_of = {m.name.removesuffix(" Kommune"): m.code for m in load_content().municipalities}
    codes = {n: code_of[name] for n, name in enumerate(MUNICIPALITIES, start=1)}
    # The municipality files themselves, not a replay of the trail: the shutdown's checkpoint wrote them.
    files = stored_municipalities(data_dir)
    in_files = {(n, task_id) for n, code in codes.items()
                for task_id, state in (files.get(code, {}).get("tasks") or {}).items() if state.get("done")}
    assert acknowledged <= in_files, sorted(acknowledged - in_files)[:5]
    store = TinyStore(data_dir)  # and the next process finds them too
    try:
        done = {(n, task_id) for n, code in codes.items()
                for task_id, state in (await store.municipality(code)).tasks.items() if state.done}
    finally:
        store.close()
    assert acknowledged <= done, sorted(acknowledged - done)[:5]
