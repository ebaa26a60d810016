"""The conversation core without a server: Assistant.on_message driven with TurnInput objects against
the real content, catalogs, understanding and the on-disk TinyStore in a temporary data dir."""
from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.store import TinyStore
from content.catalogs import Catalogs
from dialogs.assistant import Assistant
from dialogs.context import Services
from dialogs.markdown import esc
from dialogs.store import Actor
from dialogs.turn import Conversation, TurnInput
from dialogs.understanding import Understander

REPO = Path(__file__).resolve().parents[2]
TENANT = "6f1c2b7e-0000-4000-8000-000000000001"
OTHER_TENANT = "6f1c2b7e-0000-4000-8000-000000000002"
NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
METTE = Actor("aad-mette", "Mette Hansen")
JENS = Actor("aad-jens", "Jens Jensen")


def group(n: int = 1, tenant: str = TENANT) -> Conversation:
    cid = f"19:group-{n}@thread.v2"
    return Conversation(cid, f"conversation:{cid}", "groupChat", tenant)


def channel(name: str, team: str = "19:team-aarhus@thread.tacv2", tenant: str = TENANT) -> Conversation:
    return Conversation(f"19:{name}@thread.tacv2", f"team:{team}", "channel", tenant)


def personal(n: int = 1, tenant: str | None = TENANT) -> Conversation:
    cid = f"a:personal-{n}"
    return Conversation(cid, f"conversation:{cid}", "personal", tenant)


@pytest.fixture(scope="module")
def understander(content) -> Understander:
    return Understander.of(content)


@pytest.fixture(scope="module")
def catalogs() -> Catalogs:
    return Catalogs()


@pytest.fixture
def store(tmp_path) -> TinyStore:
    return TinyStore(tmp_path / "data")


@pytest.fixture
def bot(content, catalogs, store, understander):
    assistant = Assistant(Services(content, catalogs, store, understander))

    async def say(text: str, conversation: Conversation, user: Actor = METTE, now: datetime = NOW,
                  locale: str = "da-DK") -> str:
        reply = await assistant.on_message(TurnInput(text, user, conversation, now, locale))
        assert reply.text.strip(), f"no reply to {text!r}"
        return reply.text

    return say


def t(catalogs: Catalogs, msgid: str, lang: str = "da", **values) -> str:
    """A catalog string; `done` and `total` become the plural phrase "{done} af {total} opgaver" as {progress}."""
    if "total" in values:
        values["progress"] = catalogs.ngettext(lang, "word.done_of", values.pop("total"), done=values.pop("done"))
    return catalogs.text(lang, msgid, **values)


# -- the main flow ------------------------------------------------------------------------------------


async def test_register_status_next_done_status(bot, store, catalogs):
    chat = group()
    assert await bot("status", chat) == t(catalogs, "register.needed")

    reply = await bot("tilmeld Aarhus", chat)
    assert "**Aarhus Kommune**" in reply and "0751" in reply and "Region Midtjylland" in reply
    assert (await store.registration(chat.scope)).code == "0751"

    reply = await bot("status", chat)
    assert "Fase 1: Opstart" in reply
    assert t(catalogs, "status.row.current", number=1, phase="Opstart", done=0, total=6) in reply
    assert t(catalogs, "status.row", number=2, phase="Forberedelse", done=0, total=22) in reply
    assert t(catalogs, "status.total", done=0, total=34) in reply

    reply = await bot("hvad skal vi nu?", chat)
    assert "1. Udpeg projektejer" in reply and "2. Udpeg projektleder" in reply
    assert "6. Afdæk behov" in reply and "7." not in reply
    assert await store.last_list(chat.id) == [
        "udpeg-projektejer", "udpeg-projektleder", "udpeg-gevinstejer", "identificer-gevinstpotentiale",
        "kortlaeg-snitflader", "afdaek-it-miljoe"]

    reply = await bot("done 2", chat)
    assert "Udpeg projektleder" in reply and "Mette Hansen" in reply
    assert t(catalogs, "mark.progress", number=1, phase="Opstart", done=1, total=6) in reply
    state = await store.municipality("0751")
    assert set(state.tasks) == {"udpeg-projektleder"} and state.tasks["udpeg-projektleder"].done

    reply = await bot("status", chat)
    assert t(catalogs, "status.row.current", number=1, phase="Opstart", done=1, total=6) in reply
    assert t(catalogs, "status.total", done=1, total=34) in reply

    # Marking it again changes nothing and says who did it.
    reply = await bot("udført 2", chat, user=JENS)
    assert "allerede" in reply and "Mette Hansen" in reply
    assert len(await store.audit("0751")) == 2  # register + one done

    # Reopening counts down again.
    reply = await bot("fortryd 2", chat)
    assert t(catalogs, "mark.progress", number=1, phase="Opstart", done=0, total=6) in reply
    assert t(catalogs, "status.total", done=0, total=34) in await bot("status", chat)


async def test_the_same_flow_in_english(bot):
    chat = group(2)
    assert "**Odense Kommune**" in await bot("register Odense", chat, locale="en-US")
    assert "1. Appoint the project owner" in await bot("what's next?", chat, locale="en-US")
    assert "1 of 6" in await bot("done 1", chat, locale="en-US")
    assert "Overall: 1 of 34" in await bot("status", chat, locale="en-US")


async def test_done_by_number_needs_a_list_in_this_conversation(bot, catalogs):
    chat = group(3)
    await bot("tilmeld Aarhus", chat)
    assert await bot("udført 1", chat) == t(catalogs, "task.no_list", number=1)


# -- who shares a registration ----------------------------------------------------------------------


async def test_team_registration_is_shared_by_the_teams_channels(bot, store, catalogs):
    general, planning = channel("general"), channel("planning")
    reply = await bot("tilmeld Aarhus", general)
    assert reply.startswith(t(catalogs, "register.done.team", name="Aarhus Kommune", code="0751",
                              region="Region Midtjylland"))
    assert (await store.registration(general.scope)).code == "0751"

    # The other channel never registered, but belongs to the same team.
    reply = await bot("status", planning)
    assert "**Aarhus Kommune**" in reply
    assert await bot("tilmeld Aarhus", planning) == t(catalogs, "register.already", name="Aarhus Kommune")

    # Progress made in one channel shows in the other; numbered lists stay per conversation.
    await bot("hvad skal vi nu?", general)
    await bot("udført 1", general)
    assert t(catalogs, "status.total", done=1, total=34) in await bot("status", planning)
    assert await bot("udført 1", planning) == t(catalogs, "task.no_list", number=1)

    # Another team is not affected.
    assert await bot("status", channel("general", team="19:team-odense@thread.tacv2")) == t(catalogs, "register.needed")


async def test_a_group_chat_registration_is_not_shared_with_another_group_chat(bot, catalogs):
    await bot("tilmeld Aarhus", group(1))
    assert await bot("status", group(2)) == t(catalogs, "register.needed")


async def test_personal_chat_uses_the_tenants_only_municipality(bot, catalogs):
    await bot("tilmeld Aarhus", channel("general"))
    reply = await bot("status", personal())
    assert "**Aarhus Kommune**" in reply
    # The same municipality registered again elsewhere in the tenant is still only one.
    await bot("tilmeld Aarhus", group(1))
    assert "**Aarhus Kommune**" in await bot("status", personal())
    # Marking from the personal chat records progress for that municipality.
    await bot("hvad skal vi nu?", personal())
    assert "1 af 6" in await bot("udført 1", personal())
    assert t(catalogs, "status.total", done=1, total=34) in await bot("status", channel("general"))
    # Only personal chats fall back to the tenant; a fresh group chat must register.
    assert await bot("status", group(9)) == t(catalogs, "register.needed")


async def test_personal_chat_with_two_municipalities_in_the_tenant_asks_to_register(bot, catalogs):
    await bot("tilmeld Aarhus", channel("general", team="19:team-aarhus@thread.tacv2"))
    await bot("tilmeld Odense", channel("general", team="19:team-odense@thread.tacv2"))
    assert await bot("status", personal()) == t(catalogs, "register.needed")
    # Registering the personal chat itself settles it.
    await bot("tilmeld Odense", personal())
    assert "**Odense Kommune**" in await bot("status", personal())


async def test_personal_chat_in_another_tenant_does_not_see_this_tenants_municipality(bot, catalogs):
    await bot("tilmeld Aarhus", channel("general"))
    assert await bot("status", personal(2, tenant=OTHER_TENANT)) == t(catalogs, "register.needed")
    assert await bot("status", personal(3, tenant=None)) == t(catalogs, "register.needed")


# -- the audit trail ----------------------------------------------------------------------------------


async def test_audit_events_carry_actor_utc_time_and_conversation(bot, store):
    chat = group()
    await bot("tilmeld Aarhus", chat, user=METTE, now=NOW)
    await bot("hvad skal vi nu?", chat, user=METTE, now=NOW)
    await bot("udført 2", chat, user=JENS, now=NOW + timedelta(minutes=5))
    other = channel("planning")
    await bot("tilmeld Aarhus", other, user=JENS, now=NOW + timedelta(minutes=7))
    await bot("marker Udpeg projektleder som ikke udført", other, user=METTE, now=NOW + timedelta(minutes=9))

    events = await store.audit("0751")
    assert [(e.action, e.task_id) for e in events] == [
        ("reopen", "udpeg-projektleder"), ("register", None), ("done", "udpeg-projektleder"), ("register", None)]
    expected = [
        (METTE, NOW + timedelta(minutes=9), other.id),
        (JENS, NOW + timedelta(minutes=7), other.id),
        (JENS, NOW + timedelta(minutes=5), chat.id),
        (METTE, NOW, chat.id),
    ]
    for event, (actor, when, conversation) in zip(events, expected, strict=True):
        assert event.by == actor  # AAD id and display name
        at = datetime.fromisoformat(event.at)
        assert at.utcoffset() == timedelta(0), event.at
        assert at == when
        assert event.conversation == conversation
        assert event.code == "0751"
    # Filtering by task keeps only that task's events, newest first.
    assert [e.action for e in await store.audit("0751", "udpeg-projektleder")] == ["reopen", "done"]

    # The stored task state records the same who/when/where.
    state = (await store.municipality("0751")).tasks["udpeg-projektleder"]
    assert not state.done and state.by == METTE and state.conversation == other.id


async def test_history_shows_copenhagen_time(bot):
    chat = group()
    await bot("tilmeld Aarhus", chat)
    reply = await bot("historik", chat)
    assert "27. nov. 2026 kl. 10.30" in reply  # 09:30 UTC is 10:30 in Copenhagen in November
    assert "Mette Hansen" in reply


# -- user text that must not become Markdown ------------------------------------------------------------


EVIL = Actor("aad-evil", "**Evil** [x](http://e)")


async def test_a_user_name_with_markdown_is_escaped(bot):
    chat = group()
    await bot("tilmeld Aarhus", chat, user=EVIL)
    await bot("hvad skal vi nu?", chat, user=EVIL)
    replies = [
        await bot("udført 2", chat, user=EVIL),  # "... markeret som udført af <name>"
        await bot("udført 2", chat, user=METTE),  # "... allerede udført – markeret af <name> ..."
        await bot("historik", chat, user=METTE),  # "<when>: <name> markerede ..."
    ]
    for reply in replies:
        assert esc(EVIL.name) in reply
        assert r"\*\*Evil\*\* \[x\]\(http://e\)" in reply
        assert "**Evil**" not in reply
        assert "[x](http://e)" not in reply


# -- a name that matches nothing -------------------------------------------------------------------------

# Suggestions for a name that matches nothing are not a tie: no 'several match' reply, no numbered list.


async def test_unknown_term_is_not_called_ambiguous(bot, catalogs, understander):
    understanding = understander.understand("hvad betyder qwxzjk")
    assert understanding.intent == "define" and "term" in understanding.unresolved
    reply = await bot("hvad betyder qwxzjk", group())
    ambiguous = t(catalogs, "glossary.ambiguous", text="qwxzjk", options="X").split("X")[0]
    assert not reply.startswith(ambiguous), reply


async def test_unknown_task_is_not_called_ambiguous(bot, store, catalogs):
    chat = group()
    await bot("tilmeld Aarhus", chat)
    reply = await bot("marker qwxzjkpl som udført", chat)
    assert not reply.startswith(t(catalogs, "task.ambiguous", text="qwxzjkpl")), reply
    assert await store.last_list(chat.id) == []


async def test_a_name_shared_by_several_tasks_lists_them_for_a_number(bot, store):
    chat = group()
    await bot("tilmeld Aarhus", chat)
    reply = await bot("udført udpeg", chat)
    assert "1. Udpeg projektejer" in reply and "2. Udpeg projektleder" in reply
    assert "Udpeg projektleder" in await bot("udført 2", chat)
    assert (await store.municipality("0751")).tasks["udpeg-projektleder"].done


# -- the core stands alone ------------------------------------------------------------------------------


def test_core_imports_no_bot_framework():
    code = ("import content, dialogs.assistant, dialogs.understanding, bot.store, sys; "
            "assert not any(m.startswith(('botbuilder', 'botframework')) for m in sys.modules), "
            "sorted(m for m in sys.modules if m.startswith(('botbuilder', 'botframework')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
