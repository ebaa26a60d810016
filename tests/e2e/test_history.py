"""History through the real server: every kind of change history shows has its line (dialogs/events.py declares
which), the self-check's steps included, newest first; and it comes from the store's index, on both stores."""
from __future__ import annotations

import re

import pytest

from dialogs.events import KINDS
from tests.harness import BotServer, personal
from tests.wording import rx, t


@pytest.fixture(params=["tinydb", "postgresql"])
async def bot(request, tmp_path):
    overrides = {"database_url": request.getfixturevalue("postgres_url")} if request.param == "postgresql" else {}
    server = BotServer(data_dir=tmp_path / "data", config_overrides=overrides)
    await server.start()
    yield server
    await server.close()


def _kinds_in(text: str) -> list[str]:
    """Which history line each bullet is, newest first, by matching every shown kind's catalog wording."""
    kinds = []
    for bullet in (line[2:] for line in text.splitlines() if line.startswith("- ")):
        found = [k for k, kind in KINDS.items() if kind.shown and re.fullmatch(rx("da", f"history.{k}"), bullet)]
        assert len(found) == 1, f"{bullet!r} reads as {found}"
        kinds.append(found[0])
    return kinds


async def test_the_self_checks_steps_are_in_history_newest_first(bot):
    where = personal()
    await bot.say("tilmeld Aarhus", where)
    await bot.say("gå videre til forberedelse", where)
    await bot.say("ja", where)  # the question whether to start although tasks are open
    await bot.say("fortsæt alligevel", where)
    await bot.say("ja 1 3", where)
    await bot.say("ikke endnu 2: mangler budget", where)
    await bot.say("fortsæt alligevel", where)
    await bot.say("ja", where)
    history = await bot.say("historik", where)
    assert history.startswith(t("da", "history.header", name="Aarhus Kommune"))
    kinds = _kinds_in(history)
    assert kinds[0] == "phase" and kinds[-1] == "register", kinds
    assert kinds.count("gate_answer") == 2 and "gate_start" in kinds and "gate_skip" in kinds, kinds
    assert "✅ 1, 3 · ❌ 2" in history  # the answers as the checklist numbers them


async def test_history_shows_the_newest_fifteen_and_per_task_the_tasks_own(bot):
    where = personal()
    await bot.say("tilmeld Aarhus", where)
    for n in range(10):
        await bot.say("marker Udpeg projektejer som udført" if n % 2 == 0 else "fortryd Udpeg projektejer", where)
        await bot.say("marker Udpeg projektleder som udført" if n % 2 == 0 else "fortryd Udpeg projektleder", where)
    kinds = _kinds_in(await bot.say("historik", where))
    assert len(kinds) == 15 and "register" not in kinds  # the oldest are left out
    own = await bot.say("hvem markerede Udpeg projektejer?", where)
    assert len(_kinds_in(own)) == 10 and "projektleder" not in own.lower().split("\n", 1)[1]
