"""Two real `python -m bot serve` processes on ONE PostgreSQL database: what several instances of one bot promise.

Each instance runs on its own port, in local mode (no authentication), with BOT_DATABASE_URL set and a
BOT_DATA_DIR of its own that starts empty and must still be empty at the end: everything the bot knows is in
the database. Both send their replies to one in-test Connector, which also records the nudges; a reply is
matched to its message by the replyToId botbuilder puts on it. A change is *acknowledged* when its reply
reached the Connector (the bot sends it only after the transaction committed).

What the file proves, over HTTP and through the bot's own words (tests/wording.py, from the catalogs):
1. A conversation registered through one instance is registered for the other.
2. 50 people marking tasks of 5 municipalities at once, interleaved over both instances, lose no update: every
   acknowledged mark is visible through both instances (status totals, "er … udført?") and in the database,
   which holds exactly the acknowledged marks; the same task marked at once through both instances gets one
   "marked" and one "already marked".
3. Two nudge sweeps for the same minute, from two processes, send each nudge exactly once; a rerun sends
   nothing.
4. SIGKILL of one instance in the middle of a burst of marks loses none it acknowledged: the other instance
   shows them all, and answers its own marks while the dead one's transactions are cleaned up.
5. An export link made through one instance downloads through the other, after the first one is gone.

Three more tests pin down what a single process used to keep to itself: a conversation deactivated through one
instance is stored as active again by the next message through the other; one installation announced to both
instances is greeted once; `admin forget-user` leaves the person's name in no export the database keeps.

TWO_INSTANCES_SEED (default: random, printed) replays the random choices; TWO_INSTANCES_KILLS (default 3) is the
number of kill rounds in test 4.
"""
from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import ClientSession, ClientTimeout, web

from content import load_content
from dialogs.context import official_name
from tests.e2e.test_crash_recovery import BotProcess
from tests.harness import BotServer, Connector, Person, Where, card_of, channel, personal, reply_text
from tests.wording import overall_of, rx, status_of, t, tn

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0  # seconds for an instance to answer /readyz (content, understander, pool, migration)
REQUEST_TIMEOUT = 90.0  # one HTTP request to a bot, however busy the two cores are
SEED = int(os.environ.get("TWO_INSTANCES_SEED") or random.SystemRandom().randrange(2**32))
KILLS = int(os.environ.get("TWO_INSTANCES_KILLS", "3"))
CONSULTANT = Person("aad-kirsten-kombit", "Kirsten Kombit")
KOMBIT_TENANT = "6f1c2b7e-0000-4000-8000-00000000c0b1"
CPH = ZoneInfo("Europe/Copenhagen")
CONTENT = load_content()
TITLES = {task.id: task.title.da for task in CONTENT.tasks}
PHASE_OF = {task.id: task.phase for task in CONTENT.tasks}


def name_of(code: str) -> str:
    return official_name(CONTENT.known_municipality(code))


# -- the rig: instances on one database, one Connector ------------------------------------------------------


class Instance(BotProcess):
    """`python -m bot serve` on the shared database, with a data dir of its own (empty, and to stay so)."""

    def __init__(self, data_dir: Path, logs: Path, name: str, database_url: str):
        data_dir.mkdir(parents=True)
        env = {"BOT_DATABASE_URL": database_url, "BOT_NUDGE_INTERVAL_MINUTES": "0",  # sweeps only when told
               "BOT_CONSULTANTS": CONSULTANT.aad_id}
        with mock.patch.dict(os.environ, env):
            os.environ.pop("BOT_PUBLIC_URL", None)  # download links name this instance (http://localhost:PORT)
            super().__init__(data_dir, logs, name)

    async def wait_ready(self, session: ClientSession) -> float:
        """Healthy, then ready: /readyz opens the pool (and migrates) and checks the database is writable."""
        started = time.monotonic()
        await self.wait_healthy(session)
        await self.wait_for(session, "/readyz", READY_TIMEOUT, "ready", request_timeout=10)
        return time.monotonic() - started


class SharedConnector(Connector):
    """The harness's Connector, for any number of bots: `heard` sees each activity the moment it arrives (before
    the bot gets its answer), and while `hold` is there and not yet set, every send waits for it (the sweeps'
    test holds the nudges while it makes the two sweeps overlap)."""

    def __init__(self):
        super().__init__()
        self.heard: Callable[[dict], None] | None = None
        self.hold: asyncio.Event | None = None

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        body["_path"] = request.path
        self.sent.append(body)
        if self.heard is not None:
            self.heard(body)
        if self.hold is not None:
            await self.hold.wait()
        return web.json_response({"id": f"reply-{len(self.sent)}"})

    def reply_to(self, activity_id: str) -> list[dict]:
        return [a for a in self.sent if a.get("replyToId") == activity_id]


class Rig(BotServer):
    """The harness's activity builders aimed at bot processes on one database."""

    pg_url: str  # the database both instances share (BotServer.database_url is its own server's)
    logs: Path
    instances: list[Instance]
    asked: set[str]  # the ids of the activities sent to the bots

    def spawn(self, name: str) -> Instance:
        instance = Instance(self.logs / f"data-{name}", self.logs, name, self.pg_url)
        self.instances.append(instance)
        return instance

    async def start_instances(self, *names: str) -> list[Instance]:
        """Started together (both migrate the empty database at once), returned once all are ready."""
        started = [self.spawn(name) for name in names]
        await asyncio.gather(*(instance.wait_ready(self.session) for instance in started))
        return started

    async def send(self, instance: Instance, body: dict) -> int:
        self.asked.add(body["id"])
        async with self.session.post(f"{instance.url}/api/messages", json=body) as response:
            await response.read()
            return response.status

    async def ask(self, instance: Instance, text: str, where: Where, person: Person | None = None) -> str:
        """One message through `instance`; the text of its one reply."""
        body = self.message(text, where, person)
        status = await self.send(instance, body)
        assert status < 300, f"{instance.name} answered {status} to {text!r}"
        replies = self.connector.reply_to(body["id"])
        assert len(replies) == 1, f"{instance.name}: {len(replies)} replies to {text!r}"
        return reply_text(replies[0])

    def proactive(self, since: int = 0) -> list[dict]:
        """What the bots sent on their own since the Connector's `since`-th activity: not a reply to a message of
        ours (botbuilder puts a replyToId of its own on proactive messages too)."""
        return [a for a in self.connector.sent[since:] if a.get("replyToId") not in self.asked]

    def assert_no_local_state(self) -> None:
        """The database is the only state: no instance wrote a file into its data dir."""
        for instance in self.instances:
            files = [str(p.relative_to(instance.data_dir)) for p in instance.data_dir.rglob("*")]
            assert not files, f"{instance.name} wrote into its data dir: {files}"


@pytest.fixture
async def rig(tmp_path, postgres_url):
    connector = SharedConnector()
    await connector.start()
    rig = Rig(data_dir=tmp_path / "unused", connector=connector,
              session=ClientSession(timeout=ClientTimeout(total=REQUEST_TIMEOUT)))
    rig.pg_url, rig.logs, rig.instances, rig.asked = postgres_url, tmp_path, [], set()
    try:
        yield rig
    finally:
        for instance in rig.instances:
            instance.kill()
        await rig.session.close()
        await connector.stop()


async def database_marks(url: str) -> tuple[dict[str, dict[str, str]], Counter]:
    """Straight from the database: code -> task id -> who marked it done (municipalities' docs), and the number
    of "done" events per (code, task id) in the trail."""
    conn = await asyncpg.connect(url)
    try:
        docs = await conn.fetch("select code, doc::text as doc from municipalities")
        events = await conn.fetch("select code, task_id from events where action = 'done'")
    finally:
        await conn.close()
    done: dict[str, dict[str, str]] = {}
    for row in docs:
        tasks = json.loads(row["doc"]).get("tasks") or {}
        done[row["code"]] = {task: state["by"]["name"] for task, state in tasks.items() if state.get("done")}
    return done, Counter((row["code"], row["task_id"]) for row in events)


def mark(task_id: str) -> str:
    return f"marker {TITLES[task_id]} som udført"


def marked(text: str, task_id: str, who: str) -> bool:
    """The reply says this mark was made, by this person (a phase's last task answers with its checklist card,
    whose text twin carries the same sentence)."""
    return re.search(rx("da", "mark.done", task=TITLES[task_id], who=who), text) is not None


def already(text: str, task_id: str, who: str) -> bool:
    return re.search(rx("da", "mark.already", task=TITLES[task_id], who=who), text) is not None


async def register(rig: Rig, instance: Instance, code: str, where: Where, person: Person | None = None) -> None:
    reply = await rig.ask(instance, f"tilmeld {code}", where, person)
    key = "register.done.team" if where.kind == "channel" else "register.done"
    assert re.search(rx("da", key, name=name_of(code), code=code), reply), reply


async def assert_done_through(rig: Rig, instance: Instance, where: Where, task_id: str, who: str) -> None:
    reply = await rig.ask(instance, f"er {TITLES[task_id]} udført?", where)
    assert re.fullmatch(rx("da", "task_status.done", task=TITLES[task_id], who=who), reply), \
        f"{instance.name}, «{TITLES[task_id]}» acknowledged as marked by {who}: {reply!r}"


# -- 1. a registration is the database's, not the instance's ---------------------------------------------------


async def test_a_registration_through_one_instance_is_known_through_the_other(rig):
    a, b = await rig.start_instances("A", "B")
    where = personal(1)
    before = await rig.ask(b, "status", where)
    assert before == t("da", "register.needed"), before  # B really does not know this conversation yet

    await register(rig, a, "0751", where)
    status = status_of("da", await rig.ask(b, "status", where), name=name_of("0751"))
    assert status.total == (0, len(CONTENT.tasks))
    # And back: a mark made through B is counted by A.
    assert marked(await rig.ask(b, mark("udpeg-projektejer"), where), "udpeg-projektejer", "Mette Hansen")
    assert overall_of("da", await rig.ask(a, "status", where)) == (1, len(CONTENT.tasks))
    # A question asked through A is answered through B: the conversation's memory is the database's too.
    question = await rig.ask(a, f"jeg tror {TITLES['udpeg-gevinstejer']} er udført", where)
    assert question.startswith(t("da", "confirm.mark_done", task=TITLES["udpeg-gevinstejer"])), question
    assert marked(await rig.ask(b, "ja", where), "udpeg-gevinstejer", "Mette Hansen")
    assert overall_of("da", await rig.ask(a, "status", where)) == (2, len(CONTENT.tasks))
    rig.assert_no_local_state()


# -- 2. many people, both instances, no lost update --------------------------------------------------------------

MUNICIPALITIES, PEOPLE_EACH, MARKS_EACH = 5, 10, 3


async def test_fifty_people_marking_through_both_instances_lose_no_update(rig):
    rng = random.Random(SEED)
    print(f"\ntwo instances: seed {SEED} (TWO_INSTANCES_SEED={SEED} replays)")
    a, b = await rig.start_instances("A", "B")
    codes = rng.sample([m.code for m in CONTENT.municipalities], MUNICIPALITIES)
    people = {code: [Person(f"aad-two-{code}-{n}", f"Tester {code} {n}") for n in range(PEOPLE_EACH)] for code in codes}
    chats = {(code, n): personal(2000 + 100 * i + n) for i, code in enumerate(codes) for n in range(PEOPLE_EACH)}
    via = [a, b]

    # Every person registers their own chat, all at once, half through each instance.
    await asyncio.gather(*(register(rig, via[n % 2], code, chats[code, n], people[code][n])
                           for code in codes for n in range(PEOPLE_EACH)))

    # Each person marks MARKS_EACH different tasks of their municipality: 10 people, 30 tasks of one municipality,
    # interleaved over A and B, all 150 messages at once.
    plan = []  # (instance, code, person number, task id, activity)
    left: dict[str, list[str]] = {}
    for code in codes:
        order = list(TITLES)
        rng.shuffle(order)
        for n in range(PEOPLE_EACH):
            for k in range(MARKS_EACH):
                task_id = order[n * MARKS_EACH + k]
                body = rig.message(mark(task_id), chats[code, n], people[code][n])
                plan.append((via[(n + k) % 2], code, n, task_id, body))
        left[code] = order[PEOPLE_EACH * MARKS_EACH:]
    rng.shuffle(plan)
    started = time.monotonic()
    statuses = await asyncio.gather(*(rig.send(instance, body) for instance, _, _, _, body in plan))
    burst = time.monotonic() - started
    assert set(statuses) == {201}, Counter(statuses)

    acknowledged: dict[tuple[str, str], str] = {}  # (code, task id) -> who the reply says marked it
    unanswered = []
    for instance, code, n, task_id, body in plan:
        replies = rig.connector.reply_to(body["id"])
        who = people[code][n].name
        if len(replies) == 1 and marked(reply_text(replies[0]), task_id, who):
            acknowledged[code, task_id] = who
        else:
            unanswered.append((instance.name, code, task_id, [reply_text(r)[:200] for r in replies]))
    assert not unanswered, f"marks of tasks nobody else marked, not acknowledged as made: {unanswered}"

    # The same task, by two people at once, one through A and one through B: one is made, one is told.
    contests = []
    for code in codes:
        for task_id in left[code]:
            first, second = rng.sample(range(PEOPLE_EACH), 2)
            pair = [(a, first), (b, second)]
            rng.shuffle(pair)  # which of the two is sent first
            contests.append((code, task_id, pair))
    bodies = {(code, task_id, n): rig.message(mark(task_id), chats[code, n], people[code][n])
              for code, task_id, pair in contests for _, n in pair}
    statuses = await asyncio.gather(*(rig.send(instance, bodies[code, task_id, n])
                                      for code, task_id, pair in contests for instance, n in pair))
    assert set(statuses) == {201}, Counter(statuses)
    outcomes = Counter()
    for code, task_id, pair in contests:
        texts = {n: [reply_text(r) for r in rig.connector.reply_to(bodies[code, task_id, n]["id"])] for _, n in pair}
        assert all(len(v) == 1 for v in texts.values()), (code, task_id, texts)
        winners = [n for _, n in pair if marked(texts[n][0], task_id, people[code][n].name)]
        assert len(winners) == 1, f"{code} «{TITLES[task_id]}» marked at once through A and B: {texts}"
        winner = people[code][winners[0]].name
        loser = next(n for _, n in pair if n != winners[0])
        assert already(texts[loser][0], task_id, winner), \
            f"{code} «{TITLES[task_id]}»: the other one should hear it is already marked by {winner}: {texts[loser]}"
        outcomes[next(instance.name for instance, n in pair if n == winners[0])] += 1
        acknowledged[code, task_id] = winner

    # Every acknowledged mark, through both instances: counted by status, named by "er … udført?".
    for code in codes:
        count = sum(1 for (c, _) in acknowledged if c == code)
        for instance in (a, b):
            status = status_of("da", await rig.ask(instance, "status", chats[code, 0]), name=name_of(code))
            assert status.total == (count, len(CONTENT.tasks)), (instance.name, code)
    checks = [assert_done_through(rig, instance, chats[code, 0], task_id, who)
              for (code, task_id), who in acknowledged.items() for instance in (a, b)]
    await asyncio.gather(*checks)

    # The database holds exactly the acknowledged marks, each made once (one "done" event per task).
    done, events = await database_marks(rig.pg_url)
    in_database = {(code, task): who for code, tasks in done.items() for task, who in tasks.items()}
    assert in_database == acknowledged
    assert events == Counter(acknowledged.keys())
    rig.assert_no_local_state()
    print(f"two instances: {len(plan)} concurrent marks over A and B in {burst:.1f} s, all acknowledged and kept; "
          f"{len(contests)} contested tasks won by A {outcomes['A']}, by B {outcomes['B']}")


# -- 3. nudges: two sweeps at the same minute ------------------------------------------------------------------


def sweep_moment(today: date) -> tuple[date, datetime]:
    """A go-live two months ahead and a weekday 10:00 (Copenhagen) 20-22 days before it: the 30-day nudge is due
    then. Relative to today, because the bot takes a milestone typed in chat as seen from the real date."""
    golive = today + timedelta(days=60)
    moment = golive - timedelta(days=20)
    while moment.weekday() >= 5:  # the nudge window is Monday-Friday
        moment -= timedelta(days=1)
    return golive, datetime(moment.year, moment.month, moment.day, 10, 0, tzinfo=CPH)


HOLD = 8.0  # seconds the Connector may hold a nudge's answer: inside the bots' 12 s per Connector call (bot/connector.py)
OVERLAPPED = ("both sweeps held claims at once", "one sweep ended while the other held its claims")


def sweep_env(rig: Rig, name: str) -> dict[str, str]:
    data_dir = rig.logs / f"data-{name}"
    data_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("Microsoft")}
    env.update(BOT_DATABASE_URL=rig.pg_url, BOT_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    return env


async def run_sweeps(rig: Rig, at: str, names: tuple[str, ...]) -> tuple[list[tuple[int, str, str]], str]:
    """`python -m bot nudges --at <at>` once per name, all started at the same moment: (exit code, stdout, stderr)
    of each, and how they overlapped. The Connector holds every nudge's answer until the sweeps overlap (both
    hold claims, or one finished while the other held its claims; at most HOLD seconds after the first claim),
    so the second sweep plans and claims while the first one's nudges are claimed and not yet sent."""
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "nudges", "--at", at, cwd=REPO, env=sweep_env(rig, name),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
        for name in names]
    outputs = [asyncio.create_task(proc.communicate()) for proc in procs]
    rig.connector.hold = asyncio.Event()
    try:
        overlap = await _hold_until_overlap(rig.pg_url, procs) if len(procs) > 1 else "one sweep"
    finally:
        rig.connector.hold.set()
    results = []
    for proc, output in zip(procs, outputs, strict=True):
        stdout, stderr = await asyncio.wait_for(output, 120)
        results.append((proc.returncode, stdout.decode(), stderr.decode()))
    rig.connector.hold = None
    return results, overlap


async def _hold_until_overlap(url: str, procs: list[asyncio.subprocess.Process]) -> str:
    """Returns when the sweeps overlap (how, in words), or HOLD seconds after the first claim, or when all ended.
    Start-up (imports, content, the understander) takes seconds on two busy cores: the wait for the first claim
    is long, the one after it short."""
    conn = await asyncpg.connect(url)
    try:
        deadline, overlap = time.monotonic() + READY_TIMEOUT, "nothing claimed"
        while time.monotonic() < deadline:
            owners = {row["owner"] for row in await conn.fetch("select owner from nudges where state = 'claimed'")}
            finished = sum(proc.returncode is not None for proc in procs)
            if len(owners) >= 2:
                return "both sweeps held claims at once"
            if owners and finished:
                return "one sweep ended while the other held its claims"
            if owners and deadline - time.monotonic() > HOLD:
                deadline, overlap = time.monotonic() + HOLD, "one sweep held claims, the other neither claimed nor ended"
            if finished == len(procs):
                break
            await asyncio.sleep(0.02)
        return overlap
    finally:
        await conn.close()


def sent_count(stdout: str) -> int:
    found = re.search(r"^sent (\d+), failed (\d+), skipped (\d+)", stdout, re.M)
    assert found, stdout
    assert found[2] == "0", stdout
    return int(found[1])


def nudge_kind(text: str) -> str:
    for kind in ("ahead", "phase_complete", "overdue", "wave"):
        if re.fullmatch(rx("da", f"nudge.{kind}"), text, re.S):
            return kind
    raise AssertionError(f"not a nudge: {text!r}")


async def test_two_sweeps_at_the_same_minute_send_each_nudge_once(rig):
    a, b = await rig.start_instances("A", "B")
    golive, moment = sweep_moment(datetime.now(CPH).date())
    codes = ["0751", "0461", "0101", "0147"]
    expected: Counter = Counter()
    for i, code in enumerate(codes):
        team = channel(team=f"19:team-{code}@thread.tacv2", channel_id=f"19:general-{code}@thread.tacv2")
        chats = [personal(3000 + 10 * i + n) for n in range(2)]
        await register(rig, (a, b)[i % 2], code, team)
        for n, chat in enumerate(chats):
            await register(rig, (b, a)[n % 2], code, chat)
            status_of("da", await rig.ask(a, "status", chat), name=name_of(code))  # A knows the chat's municipality
        reply = await rig.ask(b, f"go-live er {golive.isoformat()}", team)
        assert re.search(rx("da", "milestone.set", name=name_of(code)), reply), reply
        for where in (team, *chats):
            expected[where.conversation_id, "ahead"] += 1
        if i == 0:  # Fase 1 completed in the team's channel: the channel has the checklist, the chats are told
            for n, task_id in enumerate(task for task in TITLES if PHASE_OF[task] == 1):
                assert marked(await rig.ask((a, b)[n % 2], mark(task_id), team), task_id, "Mette Hansen")
            for chat in chats:
                expected[chat.conversation_id, "phase_complete"] += 1

    before = len(rig.connector.sent)
    at = moment.strftime("%Y-%m-%dT%H:%M")
    started = time.monotonic()
    first, overlap = await run_sweeps(rig, at, ("sweep-1", "sweep-2"))
    elapsed = time.monotonic() - started
    for exit_code, stdout, stderr in first:
        assert exit_code == 0, f"exit {exit_code}\n{stdout}\n{stderr[-3000:]}"
    told = Counter((n["conversation"]["id"], nudge_kind(n["text"])) for n in rig.proactive(before))
    assert told == expected, f"each nudge once: got {dict(told)}; the sweeps said {[out for _, out, _ in first]}"
    sends = [sent_count(stdout) for _, stdout, _ in first]
    assert sum(sends) == sum(expected.values()), sends
    assert overlap in OVERLAPPED, f"the two sweeps did not overlap ({overlap}): nothing was raced"

    again = len(rig.connector.sent)
    rerun, _ = await run_sweeps(rig, at, ("sweep-3", "sweep-4"))
    for exit_code, stdout, stderr in rerun:
        assert exit_code == 0 and sent_count(stdout) == 0, f"exit {exit_code}\n{stdout}\n{stderr[-3000:]}"
    assert rig.proactive(again) == []
    rig.assert_no_local_state()
    print(f"\ntwo sweeps at {at}: {sum(expected.values())} nudges, sent {sends[0]} + {sends[1]}, "
          f"in {elapsed:.1f} s ({overlap}); the rerun sent none")


# -- 4. SIGKILL of one instance mid-burst ------------------------------------------------------------------------


async def test_sigkill_of_one_instance_mid_burst_loses_nothing_it_acknowledged(rig):
    rng = random.Random(SEED + 4)
    print(f"\nkill rounds: seed {SEED} (TWO_INSTANCES_SEED={SEED} replays)")
    a, b = await rig.start_instances("A-0", "B")
    codes = rng.sample([m.code for m in CONTENT.municipalities], KILLS)
    everything: dict[tuple[str, str], str] = {}  # every acknowledged mark so far: (code, task id) -> who
    first_chat: dict[str, Where] = {}
    for round_ in range(KILLS):
        code = codes[round_]
        people = [Person(f"aad-kill-{round_}-{n}", f"Kill {round_} {n}") for n in range(6)]
        chats = [personal(4000 + 10 * round_ + n) for n in range(6)]
        first_chat[code] = chats[0]
        await asyncio.gather(*(register(rig, (a, b)[n % 2], code, chats[n], people[n]) for n in range(6)))

        # Every task once, by a random person, two thirds through A; A is killed by the Connector the moment
        # it receives A's k-th acknowledgement (so A has acknowledged some and not all).
        order = list(TITLES)
        rng.shuffle(order)
        plan = {}  # activity id -> (instance, person number, task id)
        bodies = []
        for task_id in order:
            n = rng.randrange(6)
            instance = a if rng.random() < 2 / 3 else b
            body = rig.message(mark(task_id), chats[n], people[n])
            plan[body["id"]] = (instance, n, task_id)
            bodies.append((instance, body))
        through_a = sum(1 for instance, _ in bodies if instance is a)
        kill_after = rng.randint(1, max(1, through_a - 2))
        seen_from_a = []

        def heard(activity: dict, a=a, kill_after=kill_after, seen_from_a=seen_from_a, plan=plan) -> None:
            entry = plan.get(activity.get("replyToId"))
            if entry and entry[0] is a:
                seen_from_a.append(activity)
                if len(seen_from_a) == kill_after:
                    a.kill()  # SIGKILL, before A hears the Connector took this reply

        rig.connector.heard = heard
        started = time.monotonic()
        results = await asyncio.gather(*(rig.send(instance, body) for instance, body in bodies),
                                       return_exceptions=True)
        burst = time.monotonic() - started
        rig.connector.heard = None
        assert a.proc.poll() is not None, f"round {round_}: A was never killed (it acknowledged {len(seen_from_a)})"

        acked: dict[str, str] = {}
        from_a, failures = 0, []
        for (instance, body), result in zip(bodies, results, strict=True):
            _, n, task_id = plan[body["id"]]
            replies = rig.connector.reply_to(body["id"])
            if replies and marked(reply_text(replies[0]), task_id, people[n].name):
                acked[task_id] = people[n].name
                from_a += instance is a
            elif instance is b:  # B lives: every mark through it is answered and made
                failures.append((task_id, result, [reply_text(r)[:200] for r in replies]))
        assert not failures, f"round {round_}: marks through B not acknowledged while A died: {failures}"
        everything.update({(code, task_id): who for task_id, who in acked.items()})

        # Through B: every acknowledged mark of every round so far, counted and named.
        done, events = await database_marks(rig.pg_url)
        for c in first_chat:
            count = overall_of("da", await rig.ask(b, "status", first_chat[c]))[0]
            assert count == len(done.get(c, {})), (c, count, done.get(c))
        await asyncio.gather(*(assert_done_through(rig, b, first_chat[c], task_id, who)
                               for (c, task_id), who in everything.items()))
        lost = {k: who for k, who in everything.items() if done.get(k[0], {}).get(k[1]) != who}
        assert not lost, f"acknowledged marks missing from the database: {lost}"
        assert all(count == 1 for count in events.values()), events
        assert set(events) == {(c, task) for c, tasks in done.items() for task in tasks}
        print(f"  round {round_}: kill after A's ack {kill_after:2d} of {through_a:2d} (burst {burst:.1f} s): "
              f"{from_a:2d} acknowledged by A, {len(acked) - from_a:2d} by B, {len(done.get(code, {})):2d} in the "
              f"database, {sum(isinstance(r, Exception) for r in results):2d} POSTs to A without an answer")

        a = rig.spawn(f"A-{round_ + 1}")  # a new A on the same database for the next round
        await a.wait_ready(rig.session)
        assert overall_of("da", await rig.ask(a, "status", chats[0]))[0] == len(done[code])
    rig.assert_no_local_state()


# -- 5. an export link works on any instance ---------------------------------------------------------------------


async def test_an_export_link_made_through_one_instance_downloads_through_the_other(rig):
    a, b = await rig.start_instances("A", "B")
    aarhus, odense = personal(5001), personal(5002)
    await register(rig, a, "0751", aarhus)
    await register(rig, b, "0461", odense, Person("aad-odense", "Ole Odense"))
    assert marked(await rig.ask(b, mark("udpeg-projektleder"), aarhus), "udpeg-projektleder", "Mette Hansen")
    assert marked(await rig.ask(a, mark("udpeg-gevinstejer"), odense, Person("aad-odense", "Ole Odense")),
                  "udpeg-gevinstejer", "Ole Odense")

    body = rig.message("eksport", personal(5100, tenant=KOMBIT_TENANT), CONSULTANT)
    assert await rig.send(a, body) == 201
    [reply] = rig.connector.reply_to(body["id"])
    assert reply_text(reply).startswith(tn("da", "portfolio.export", 2)), reply_text(reply)
    [action] = card_of(reply)["actions"]
    link = urlsplit(action["url"])
    assert f"{link.scheme}://{link.netloc}" == f"http://localhost:{a.port}", action["url"]  # A made it
    assert re.fullmatch(r"/exports/[\w-]{20,}", link.path), link.path

    a.kill()  # the download cannot be served from A's memory: A is gone
    async with rig.session.get(b.url + link.path) as response:
        status, headers, data = response.status, response.headers, await response.read()
    assert status == 200, data[:300]
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    assert data.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline=""), delimiter=";"))
    rows = {(row[0], row[4]): row for row in table[1:]}
    assert {code for code, _ in rows} == {"0751", "0461"}
    assert len(rows) == 2 * len(CONTENT.tasks)
    assert rows["0751", "udpeg-projektleder"][9:11] == ["udført", "Mette Hansen"]
    assert rows["0461", "udpeg-gevinstejer"][9:11] == ["udført", "Ole Odense"]
    assert sum(row[9] == "udført" for row in rows.values()) == 2

    async with rig.session.get(f"{b.url}/exports/{'x' * 32}") as response:  # and B does not serve just anything
        assert response.status == 404
    rig.assert_no_local_state()


# -- what a single process kept to itself, now shared: conversations' state, greetings, exports -----------------


async def test_a_conversation_left_through_one_instance_and_rejoined_gets_nudges_again(rig):
    """The bot is removed from a team's channel (the removal reaches B) and added back; the team talks to it
    again through A, which had stored that channel before. The channel is active again: it gets its nudge, like
    a channel where removal and return both went through A. Was: A's memory of having stored the channel (its
    fingerprint unchanged) skipped the write, the database kept it inactive, and the channel heard nothing
    more; the file store checks the stored `active` flag for exactly this (TinyStore.conversation_known)."""
    from tests.harness import BOT_ID

    a, b = await rig.start_instances("A", "B")
    golive, moment = sweep_moment(datetime.now(CPH).date())
    crossed = channel(team="19:team-crossed@thread.tacv2", channel_id="19:general-crossed@thread.tacv2")
    control = channel(team="19:team-control@thread.tacv2", channel_id="19:general-control@thread.tacv2")
    for code, where, other in (("0751", crossed, b), ("0461", control, a)):
        await register(rig, a, code, where)
        reply = await rig.ask(a, f"go-live er {golive.isoformat()}", where)
        assert re.search(rx("da", "milestone.set", name=name_of(code)), reply), reply
        for change in ("membersRemoved", "membersAdded"):  # removed, and added back (a greeting comes)
            assert await rig.send(other, rig.activity(where, type="conversationUpdate", **{change: [{"id": BOT_ID}]})) < 300
        status_of("da", await rig.ask(a, "status", where), name=name_of(code))  # talks to A again

    before = len(rig.connector.sent)
    results, _ = await run_sweeps(rig, moment.strftime("%Y-%m-%dT%H:%M"), ("sweep",))
    assert results[0][0] == 0, results
    told = Counter(n["conversation"]["id"] for n in rig.proactive(before))
    assert told[control.conversation_id] == 1, told  # removed and back through the same instance: nudged
    assert told[crossed.conversation_id] == 1, f"the channel that came back through A is nudged again: {told}"


async def test_one_installation_announced_to_both_instances_greets_once(rig):
    """Teams announces one installation twice (conversationUpdate and installationUpdate); behind a load
    balancer the two may reach different instances. The bot greets once, as test_http_edges proves for one."""
    from tests.harness import BOT_ID

    a, b = await rig.start_instances("A", "B")
    where = channel()
    before = len(rig.connector.sent)
    assert await rig.send(a, rig.activity(where, type="conversationUpdate", membersAdded=[{"id": BOT_ID}])) < 300
    assert await rig.send(b, rig.activity(where, type="installationUpdate", action="add")) < 300
    greetings = [reply_text(r) for r in rig.connector.sent[before:]]
    assert greetings == [t("da", "greet.body")], greetings


async def database_text(url: str) -> str:
    """Every value of every table of the database as text (bytea decoded as UTF-8): to prove a name is not in it."""
    conn = await asyncpg.connect(url)
    try:
        tables = [r["tablename"] for r in await conn.fetch("select tablename from pg_tables where schemaname = 'public'")]
        out = []
        for table in tables:
            for row in await conn.fetch(f'select * from "{table}"'):
                out += [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row.values()]
        return "\n".join(out)
    finally:
        await conn.close()


async def test_forget_user_leaves_the_name_in_no_export_kept_by_the_database(rig):
    """With PostgreSQL the consultants' exports live in the database (so any instance serves the link). The CSV
    names who marked each task; after `admin forget-user` the person's name and id must be nowhere in the
    database, as nowhere in a data dir (test_tenant_isolation). Was: the export's bytes kept the name, past
    the link's 15 minutes too (no expired export is ever deleted)."""
    a, b = await rig.start_instances("A", "B")
    ole = Person("aad-ole-odense", "Ole Odense")
    odense = personal(6001)
    await register(rig, a, "0461", odense, ole)
    assert marked(await rig.ask(b, mark("udpeg-gevinstejer"), odense, ole), "udpeg-gevinstejer", ole.name)
    body = rig.message("eksport", personal(6100, tenant=KOMBIT_TENANT), CONSULTANT)
    assert await rig.send(a, body) == 201
    assert rig.connector.reply_to(body["id"])

    env = sweep_env(rig, "admin")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "admin", "forget-user", ole.aad_id, cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, (stdout + stderr).decode()
    text = await database_text(rig.pg_url)
    assert ole.name not in text and ole.aad_id not in text, \
        [line[:120] for line in text.splitlines() if ole.name in line or ole.aad_id in line]
