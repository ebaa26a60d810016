"""Proactive nudges end to end: real server, real store, the in-test Connector receiving the sends."""
from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app import NUDGES, build_services
from bot.config import Config
from bot.nudges import NudgeSender
from tests.harness import channel, personal
from tests.wording import fields, rx, rx_n, t

CPH = ZoneInfo("Europe/Copenhagen")
REPO = Path(__file__).parents[2]
GOLIVE = "10. januar 2027"  # the fixture's go-live as the nudges spell it (Babel "long", da_DK)


def due_phase_open(content, kind: str, **values) -> str:
    """A regex for the ahead/overdue nudge about go-live: every task of Fase 2 still open (none is marked)."""
    open_tasks = sum(task.phase == 2 for task in content.tasks)
    return rx_n("da", f"nudge.{kind}", open_tasks, milestone=content.term("go-live").term.da, date=GOLIVE, number=2,
                phase=content.phase(2).name.da, **values)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CPH)


@pytest.fixture
async def aarhus(server):
    """Aarhus registered by a team; messages from the channel and one personal chat; go-live 2027-01-10."""
    await server.say("tilmeld Aarhus", channel())
    await server.say("status", personal())
    await server.say("go-live er 10. januar 2027", channel())
    server.connector.sent.clear()
    return server


def sender(server) -> NudgeSender:
    return server.runner.app[NUDGES]


def nudges_to(server) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for activity in server.connector.sent:
        out.setdefault(activity["conversation"]["id"], []).append(activity["text"])
    return out


async def test_milestone_ahead_reaches_every_conversation_once(aarhus, content):
    report = await sender(aarhus).sweep(at("2026-12-14T10:00"))  # 27 days before go-live: the 30-day nudge
    assert len(report.sent) == 2 and not report.failed
    sent = nudges_to(aarhus)
    assert set(sent) == {channel().conversation_id, personal().conversation_id}
    for texts in sent.values():
        assert len(texts) == 1
        assert re.fullmatch(due_phase_open(content, "ahead"), texts[0], re.S), texts[0]
    again = await sender(aarhus).sweep(at("2026-12-14T10:05"))
    assert again.sent == [] and len(aarhus.connector.sent) == 2
    later = await sender(aarhus).sweep(at("2026-12-28T10:00"))  # 13 days: the 14-day nudge, once per conversation
    assert len(later.sent) == 2 and all("|14|" in key for key in later.sent)


async def test_quiet_hours_hold_and_the_nudge_waits_for_the_opening(aarhus):
    for moment in ("2026-12-14T07:59", "2026-12-14T16:00", "2026-12-13T10:00"):  # early, late, a Sunday
        report = await sender(aarhus).sweep(at(moment))
        assert not report.window_open and report.sent == []
    assert aarhus.connector.sent == []
    assert len((await sender(aarhus).sweep(at("2026-12-15T08:00"))).sent) == 2


async def test_overdue_once_then_weekly(aarhus, content):
    assert len((await sender(aarhus).sweep(at("2027-01-11T09:00"))).sent) == 2
    assert re.fullmatch(due_phase_open(content, "overdue"), aarhus.connector.sent[0]["text"], re.S)
    assert (await sender(aarhus).sweep(at("2027-01-12T09:00"))).sent == []
    assert (await sender(aarhus).sweep(at("2027-01-15T09:00"))).sent == []
    assert len((await sender(aarhus).sweep(at("2027-01-18T09:00"))).sent) == 2  # a week on


async def test_two_concurrent_sweeps_send_each_nudge_once(aarhus):
    other = NudgeSender(build_services(Config(data_dir=aarhus.data_dir)), sender(aarhus).adapter, "")
    first, second = await asyncio.gather(sender(aarhus).sweep(at("2026-12-14T10:00")),
                                         other.sweep(at("2026-12-14T10:00")))
    assert len(first.sent) + len(second.sent) == 2
    assert len(aarhus.connector.sent) == 2


async def test_failed_delivery_is_retried_on_the_next_sweep(aarhus):
    aarhus.connector.fail_with = 503
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    sender(aarhus).sleep = no_sleep
    report = await sender(aarhus).sweep(at("2026-12-14T10:00"))
    assert report.sent == [] and len(report.failed) == 2
    assert waits == [0.5, 1.0, 2.0] * 2  # backoff between four attempts, per nudge
    aarhus.connector.fail_with = None
    assert len((await sender(aarhus).sweep(at("2026-12-14T10:20"))).sent) == 2


async def test_429_retry_after_is_honoured(aarhus):
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    sender(aarhus).sleep = no_sleep
    aarhus.connector.fail_next = [(429, {"Retry-After": "7"})]
    report = await sender(aarhus).sweep(at("2026-12-14T10:00"))
    assert len(report.sent) == 2 and waits == [7.0]


async def test_a_conversation_that_answers_403_gets_no_more_nudges(aarhus):
    aarhus.connector.fail_next = [(403, {})]
    report = await sender(aarhus).sweep(at("2026-12-14T10:00"))
    assert len(report.deactivated) == 1 and len(report.sent) == 1
    assert (await sender(aarhus).sweep(at("2026-12-28T10:00"))).sent.__len__() == 1


async def test_bot_removed_from_the_team_stops_nudges_there(aarhus):
    from tests.harness import BOT_ID

    await aarhus.post(aarhus.activity(channel(), type="conversationUpdate", membersRemoved=[{"id": BOT_ID}]))
    report = await sender(aarhus).sweep(at("2026-12-14T10:00"))
    assert list(nudges_to(aarhus)) == [personal().conversation_id] and len(report.sent) == 1


async def test_phase_complete_nudges_the_other_conversations(aarhus, content):
    await aarhus.say("hvad skal vi nu?", channel())
    for n in range(1, 7):
        await aarhus.say(f"udført {n}", channel())
    aarhus.connector.sent.clear()
    report = await sender(aarhus).sweep(at("2026-11-30T10:00"))
    phase_keys = [k for k in report.sent if "phase_complete" in k]
    assert len(phase_keys) == 1 and personal().conversation_id in phase_keys[0]  # the channel has the checklist
    assert nudges_to(aarhus)[personal().conversation_id][0] == \
        t("da", "nudge.phase_complete", number=1, phase=content.phase(1).name.da, next=2)


def test_nudges_command_dry_run_and_exit_codes(tmp_path):
    env = {"BOT_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "bot", "nudges", "--at", "2026-12-14T10:00", "--dry-run"],
                         cwd=REPO, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    night = subprocess.run([sys.executable, "-m", "bot", "nudges", "--at", "2026-12-14T23:00"],
                           cwd=REPO, env=env, capture_output=True, text=True)
    assert night.returncode == 0 and "outside the nudge window" in night.stdout
    bad = subprocess.run([sys.executable, "-m", "bot", "nudges", "--at", "tomorrow"],
                         cwd=REPO, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "--at must be" in bad.stderr


def test_dry_run_prints_what_is_due_and_sends_nothing(aarhus):
    env = {"BOT_DATA_DIR": str(aarhus.data_dir), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "bot", "nudges", "--at", "2026-12-14T10:00", "--dry-run"],
                         cwd=REPO, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("would send:") == 2 and GOLIVE in run.stdout
    assert aarhus.connector.sent == []


WAVE = """
  waves:
    - id: boelge-1
      name: {{da: "Bølge 1", en: "Wave 1"}}
      milestones: {{idriftsaettelsesdato: {first}, go-live: {second}}}
      members: ["0751"]
"""


async def test_changed_wave_dates_are_told_once_to_every_member_conversation(tmp_path, content):
    import shutil

    from content.loader import CONTENT_ROOT
    from tests.harness import BotServer

    root = tmp_path / "content"
    shutil.copytree(CONTENT_ROOT, root)
    project = (root / "data" / "project.yaml").read_text()
    write = lambda first, second: (root / "data" / "project.yaml").write_text(  # noqa: E731
        project.replace("  waves: []\n", WAVE.format(first=first, second=second)))
    write("2027-06-01", "2027-06-15")
    bot = BotServer(data_dir=tmp_path / "data", content_root=root)
    await bot.start()
    try:
        await bot.say("tilmeld Aarhus", channel())
        assert re.search(rx("da", "status.when.wave", wave="Bølge 1"), await bot.say("status", channel()))
        first = await bot.runner.app[NUDGES].sweep(at("2026-12-14T10:00"))
        assert first.sent == []  # first sight of the wave is its baseline; go-live is months away
        write("2027-09-01", "2027-09-15")  # development slipped
        await bot.restart()
        bot.connector.sent.clear()
        report = await bot.runner.app[NUDGES].sweep(at("2026-12-15T10:00"))
        assert len(report.sent) == 1
        told = fields(re.fullmatch(rx("da", "nudge.wave", wave="Bølge 1"), bot.connector.sent[0]["text"], re.S))
        assert sorted(told["dates"].splitlines()) == sorted([
            f"- {content.term('idriftsaettelsesdato').term.da}: 1. september 2027",
            f"- {content.term('go-live').term.da}: 15. september 2027"])
        assert (await bot.runner.app[NUDGES].sweep(at("2026-12-16T10:00"))).sent == []
    finally:
        await bot.close()


async def test_metrics_count_nudges_claimed_sent_and_failed(aarhus):
    def count(text: str, state: str) -> float:
        line = next((row for row in text.splitlines() if row.startswith(f'bot_nudges_total{{state="{state}"}}')), None)
        return float(line.rsplit(" ", 1)[1]) if line else 0.0

    async def no_wait(seconds: float) -> None:
        return None

    sender(aarhus).sleep = no_wait  # the sweep's retries, without their pauses
    await sender(aarhus).sweep(at("2026-12-14T10:00"))  # two conversations, both told
    aarhus.connector.fail_with = 500  # the 14-day nudges fail, retries included
    await sender(aarhus).sweep(at("2026-12-28T10:00"))
    aarhus.connector.fail_with = None
    async with aarhus.session.get(f"{aarhus.url}/metrics") as response:
        text = await response.text()
    assert (count(text, "claimed"), count(text, "sent"), count(text, "failed")) == (4, 2, 2)
