"""A municipality belongs to the tenant that registered it: no other tenant can read or change it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import OTHER_TENANT, TENANT, BotServer, Person, channel, personal
from tests.wording import status_of, t

pytestmark = pytest.mark.both_stores  # every test on the data dir and on PostgreSQL (tests/conftest.py)
REFUSED = t("da", "tenant.refused", name="Aarhus Kommune")
NOT_REGISTERED = t("da", "register.needed")


def phase_1_done(status: str) -> tuple[int, int]:
    """(done, total) of Fase 1 in a status reply."""
    _, done, total = status_of("da", status).phases[1]
    return done, total


@pytest.fixture
async def aarhus(server):
    """Aarhus registered by TENANT's team, with one task done."""
    await server.say("tilmeld Aarhus", channel())
    await server.say("marker Udpeg projektleder som udført", channel())
    return server




async def test_another_tenant_cannot_register_a_bound_municipality(aarhus):
    intruder = channel(team="19:intruder@thread.tacv2", channel_id="19:intruder-general@thread.tacv2", tenant=OTHER_TENANT)
    reply = await aarhus.say("tilmeld Aarhus", intruder)
    assert REFUSED in reply
    assert await aarhus.say("status", intruder) == NOT_REGISTERED  # still not registered
    assert [e["action"] for e in await aarhus.events()] == ["register", "done"]


@pytest.mark.parametrize("text", ["status", "hvad skal vi nu?", "marker Udpeg projektejer som udført",
                                  "fortryd Udpeg projektleder", "historik", "hvem markerede Udpeg projektleder?"])
async def test_a_forged_conversation_from_another_tenant_is_refused(aarhus, text):
    """The same team id arriving with another tenant (forged channelData) sees and changes nothing."""
    forged = channel(tenant=OTHER_TENANT)
    reply = await aarhus.say(text, forged)
    assert REFUSED in reply
    assert "Udpeg projektleder" not in reply and "Mette" not in reply
    assert [e["action"] for e in await aarhus.events()] == ["register", "done"]
    assert phase_1_done(await aarhus.say("status", channel())) == (1, 6)  # the owner's data is unchanged


async def test_personal_chat_in_another_tenant_does_not_inherit(aarhus):
    assert await aarhus.say("status", personal(3, tenant=OTHER_TENANT)) == NOT_REGISTERED


async def test_allow_list_refuses_other_tenants_politely(tmp_path, store_config):
    bot = BotServer(data_dir=tmp_path / "data")
    bot.config_overrides = {"allowed_tenants": frozenset({TENANT}), **store_config}
    await bot.start()
    try:
        reply = await bot.say("tilmeld Aarhus", personal(tenant=OTHER_TENANT))
        assert reply == t("da", "tenant.not_allowed")
        assert await bot.events() == []
        english = await bot.say("help", personal(tenant=OTHER_TENANT), Person(locale="en-US"))
        assert english == t("en", "tenant.not_allowed")
        assert "Aarhus Kommune" in await bot.say("tilmeld Aarhus", personal(tenant=TENANT))
    finally:
        await bot.close()


def _admin(bot: BotServer, *args: str) -> subprocess.CompletedProcess:
    """`python -m bot admin …` on the bot's store: its data dir, or its database (BOT_DATABASE_URL)."""
    env = {"BOT_DATA_DIR": str(bot.data_dir), "PATH": "/usr/bin:/bin"}
    if bot.database_url:
        env["BOT_DATABASE_URL"] = bot.database_url
    return subprocess.run([sys.executable, "-m", "bot", "admin", *args], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).parents[2])


async def test_rebind_is_an_audited_operator_command(aarhus):
    await aarhus.stop_bot()
    bad = _admin(aarhus, "rebind", "751", "not-a-guid")
    assert bad.returncode == 2 and "GUID" in bad.stderr
    done = _admin(aarhus, "rebind", "751", OTHER_TENANT)
    assert done.returncode == 0, done.stderr
    await aarhus.start()
    new_team = channel(team="19:new-owner@thread.tacv2", channel_id="19:new-general@thread.tacv2", tenant=OTHER_TENANT)
    assert "Aarhus Kommune" in await aarhus.say("tilmeld Aarhus", new_team)
    assert phase_1_done(await aarhus.say("status", new_team)) == (1, 6)  # progress moved with the municipality
    assert REFUSED in await aarhus.say("status", channel())  # the old tenant is out
    rebind = [e for e in await aarhus.events() if e["action"] == "rebind"]
    assert rebind and rebind[0]["by"]["id"] == "operator" and OTHER_TENANT in rebind[0]["conversation"]


async def test_forget_user_pseudonymises_the_audit_trail(aarhus):
    await aarhus.say("svar på engelsk", channel())
    await aarhus.stop_bot()
    result = _admin(aarhus, "forget-user", Person().aad_id)
    assert result.returncode == 0, result.stderr
    text = await aarhus.stored_text()  # read with the bot stopped: what the command left
    assert Person().aad_id not in text and Person().name not in text
    await aarhus.start()
    history = await aarhus.say("historik", channel())
    assert t("da", "person.forgotten") in history and "Mette" not in history  # preference gone: Danish again
    assert (await aarhus.events())[-1]["action"] == "forget"


async def test_backup_while_running_is_a_consistent_copy(aarhus, tmp_path):
    result = _admin(aarhus, "backup", str(tmp_path / "backup"))
    assert result.returncode == 0, result.stderr
    copy = BotServer(data_dir=tmp_path / "backup")
    await copy.start()
    try:
        assert phase_1_done(await copy.say("status", channel())) == (1, 6)
    finally:
        await copy.close()
