"""The load generator: N Teams-shaped activities at concurrency c against one server, from the bench process.

Closed loop: c workers, each with its own conversation (slot), each sending its next activity as soon as
the previous one is answered, until N are sent. Latency is POST to HTTP answer; every variant delivers its
reply to the Connector before answering, so it includes the reply's round trip. The activity JSON is
serialised before the clock starts, so the generator's own work stays out of the latencies.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import aiohttp

from bench.activities import Slot, message
from bench.connector import Connector
from bench.servers import Server, cpu_ms

HEADERS = {"Content-Type": "application/json"}


@dataclass
class Run:
    variant: str
    concurrency: int
    requests: int = 0
    elapsed: float = 0.0  # seconds, first send to last answer
    cpu_ms: float = 0.0  # the server process's user+system CPU over the run
    latencies: list[float] = field(default_factory=list)  # seconds
    missing: int = 0  # no reply reached the Connector
    wrong: int = 0  # a reply arrived but did not say what the mix expects (e.g. a mark that did not mark)
    errors: int = 0  # HTTP status >= 300 or a failed request


def client(max_concurrency: int) -> aiohttp.ClientSession:
    # One keep-alive connection per worker, reused across runs: connection set-up is not what we measure.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=max_concurrency, keepalive_timeout=300),
                                 timeout=aiohttp.ClientTimeout(total=60))


async def send(session: aiohttp.ClientSession, server: Server, activity: dict) -> int:
    async with session.post(server.url + "/api/messages", data=json.dumps(activity).encode(), headers=HEADERS) as r:
        await r.read()
        server.activities += 1
        return r.status


async def register(session: aiohttp.ClientSession, bot: Server, connector: Connector, slots: list[Slot]) -> None:
    """"tilmeld <kommune>" in each slot's personal chat, so the mix's status and marks have a municipality."""
    for slot in slots:
        activity = message(f"tilmeld {slot.municipality}", slot, connector.url)
        status = await send(session, bot, activity)
        reply = " ".join(connector.replies.pop(activity["id"], []))
        if status >= 300 or "tilknyttet" not in reply:
            raise RuntimeError(f"registering {slot.municipality} failed ({status}): {reply!r}\n{bot.log_tail()}")


async def drive(session: aiohttp.ClientSession, server: Server, connector: Connector, slots: list[Slot],
                concurrency: int, requests: int, check_text: bool) -> Run:
    """Send `requests` activities with `concurrency` workers (worker i uses slots[i]); read the server's CPU
    before and after. check_text: also check that mark/undo replies say the change happened."""
    run = Run(server.name, concurrency)
    remaining = requests

    async def worker(slot: Slot) -> None:
        nonlocal remaining
        url = server.url + "/api/messages"
        while remaining > 0:
            remaining -= 1
            text, expect = slot.next_message()
            activity = message(text, slot, connector.url)
            body = json.dumps(activity).encode()
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=HEADERS) as response:
                    await response.read()
                    status = response.status
            except (TimeoutError, aiohttp.ClientError):
                status = 599
            run.latencies.append(time.perf_counter() - started)
            server.activities += 1
            if status >= 300:
                run.errors += 1
            reply = connector.replies.pop(activity["id"], None)
            if reply is None:
                run.missing += 1
            elif check_text and expect and not any(said.startswith(expect) for said in reply):
                run.wrong += 1

    cpu_before = cpu_ms(server.pid)
    started = time.perf_counter()
    await asyncio.gather(*(worker(slot) for slot in slots[:concurrency]))
    run.elapsed = time.perf_counter() - started
    run.cpu_ms = cpu_ms(server.pid) - cpu_before
    run.requests = len(run.latencies)
    return run


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile: the smallest value with at least p % of the values at or below it."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100)
    return ordered[int(rank) - 1]


@dataclass
class Summary:
    """All rounds of one variant at one concurrency, pooled."""

    variant: str
    concurrency: int
    requests: int
    per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cpu_ms_per_activity: float
    missing: int
    wrong: int
    errors: int

    @classmethod
    def of(cls, runs: list[Run]) -> Summary:
        latencies = [x for r in runs for x in r.latencies]
        requests = sum(r.requests for r in runs)
        return cls(runs[0].variant, runs[0].concurrency, requests,
                   requests / sum(r.elapsed for r in runs),
                   percentile(latencies, 50) * 1000, percentile(latencies, 95) * 1000, percentile(latencies, 99) * 1000,
                   sum(r.cpu_ms for r in runs) / requests,
                   sum(r.missing for r in runs), sum(r.wrong for r in runs), sum(r.errors for r in runs))
