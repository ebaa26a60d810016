"""HTTP-level behaviour: health, bad requests, Teams scoping, mentions, and persistence across a restart."""
from __future__ import annotations

import json
import re

from tests.harness import OTHER_TENANT, Person, channel, group_chat, personal, reply_text
from tests.wording import rx, status_of, t

NOT_REGISTERED = t("da", "register.needed")


async def test_healthz(server):
    async with server.session.get(f"{server.url}/healthz") as response:
        assert response.status == 200
        assert (await response.json())["status"] == "ok"


async def test_malformed_json_is_400_and_changes_nothing(server):
    assert await server.post(None, raw=b'{"type": "message", "text": ') == 400
    assert await server.post(None, raw=b"\xff\xfe not utf-8") == 400
    assert server.connector.sent == []
    assert not (server.data_dir / "audit.jsonl").exists()


async def test_non_json_content_type_is_415(server):
    assert await server.post(None, raw=b"status", content_type="text/plain") == 415


async def test_non_object_and_missing_fields_are_400(server):
    for body in ([1, 2], "message", 42, None, {}, {"type": 7}, {"type": "message", "text": "status"},
                 {"type": "message", "text": "status", "conversation": {"id": "x"}}):
        assert await server.post(body) == 400, body
    assert server.connector.sent == []


async def test_oversized_body_is_413(server):
    huge = server.message("status", personal())
    huge["text"] = "x" * 300_000
    assert await server.post(huge) == 413


async def test_unknown_activity_types_are_accepted_silently(server):
    for kind in ("typing", "messageReaction", "event", "invoke-ish", "endOfConversation"):
        status = await server.post(server.activity(personal(), type=kind))
        assert status < 500, kind
    assert server.connector.sent == []


async def test_bad_texts_get_a_polite_reply_and_store_nothing(server):
    for text in ("", "🙂🙂🙂", "x" * 20_000, "\x07\x1b[31m", "tilmeld Atlantis"):
        reply = await server.say(text, personal())
        assert reply, f"no reply for {text[:20]!r}"
        assert "Traceback" not in reply
    assert re.fullmatch(rx("da", "register.unknown", text="Atlantis"), reply), reply  # echoed as typed, not folded
    assert not (server.data_dir / "audit.jsonl").exists()


async def test_wrong_typed_fields_do_not_break_the_turn(server):
    body = server.message("status", personal())
    body["text"] = ["not", "a", "string"]
    body["entities"] = "nope"
    assert await server.post(body) < 500


async def test_numbers_json_allows_but_fast_encoders_refuse_still_get_an_answer(server):
    """A 31-digit integer in the conversation comes back in the reply's conversation: it must still encode."""
    body = server.message("hvad betyder go-live?", personal())
    body["conversation"]["extra"] = 10**30
    reply = await server.exchange(body)
    assert reply["conversation"]["extra"] == 10**30
    assert "go-live" in reply_text(reply).lower()


async def test_channel_message_without_mention_is_ignored(server):
    assert await server.say("status", channel(), mention=False) == ""
    assert await server.say("status", channel()) == NOT_REGISTERED


async def test_mention_is_stripped_before_understanding(server):
    reply = await server.say("tilmeld Aarhus", group_chat())
    assert "Aarhus Kommune" in reply


async def test_team_registration_is_shared_by_channels_and_threads(server):
    general = channel(channel_id="19:general@thread.tacv2")
    planning = channel(channel_id="19:planning@thread.tacv2")
    assert "Aarhus Kommune" in await server.say("tilmeld Aarhus", general)
    assert "Aarhus Kommune" in await server.say("status", planning)
    assert "Aarhus Kommune" in await server.say("status", general.thread())
    other_team = channel(team="19:team-odense@thread.tacv2", channel_id="19:odense-general@thread.tacv2")
    assert await server.say("status", other_team) == NOT_REGISTERED


async def test_numbers_refer_to_the_list_shown_in_the_same_thread(server, content):
    general = channel()
    manager = content.task("udpeg-projektleder").title.da
    await server.say("tilmeld Aarhus", general)
    await server.say("hvad skal vi nu?", general.thread("111"))  # phase 1: 2 is Udpeg projektleder
    await server.say("hvad er det næste i Forberedelse?", general.thread("222"))  # another list elsewhere
    assert manager in await server.say("done 2", general.thread("111"))
    assert manager not in await server.say("fortryd 1", general.thread("222"))


async def test_personal_chat_uses_the_tenants_only_municipality(server):
    await server.say("tilmeld Aarhus", channel())
    assert "Aarhus Kommune" in await server.say("status", personal(7))
    assert await server.say("status", personal(8, tenant=OTHER_TENANT)) == NOT_REGISTERED


async def test_progress_and_audit_survive_a_restart(server, content):
    mette = Person("aad-mette", "Mette Hansen")
    await server.say("tilmeld Aarhus", personal(), mette)
    await server.say("marker Udpeg projektleder som udført", personal(), mette)
    await server.say("svar på engelsk", personal(), mette)
    await server.restart()
    status = await server.say("status", personal(), mette)
    assert status_of("en", status).phases[1][1:] == (1, 6)  # progress and the language preference both survived
    history = await server.say("history", personal(), mette)
    task = content.task("udpeg-projektleder").title.en
    assert re.search(rx("en", "history.done", who="Mette Hansen", task=task), history), history
    audit = [json.loads(line) for line in (server.data_dir / "audit.jsonl").read_text().splitlines()]
    assert [e["action"] for e in audit] == ["register", "done"]
    assert audit[1]["by"] == {"id": "aad-mette", "name": "Mette Hansen"}
    assert audit[1]["at"].startswith("2026-11-27T09:30")


async def test_one_installation_greets_once(server):
    from tests.harness import BOT_ID

    where = channel()
    await server.post(server.activity(where, type="conversationUpdate", membersAdded=[{"id": BOT_ID}]))
    await server.post(server.activity(where, type="installationUpdate", action="add"))
    assert server.connector.texts() == [t("da", "greet.body")]


async def test_undeliverable_reply_is_logged_with_activity_id_and_state_is_kept(server, caplog):
    await server.say("tilmeld Aarhus", personal())
    server.connector.fail_with = 400  # refused, so not retried (a 503 is, for up to the retry budget)
    activity = server.message("marker Udpeg projektleder som udført", personal())
    with caplog.at_level("ERROR", logger="bot.handler"):
        assert await server.post(activity) < 500
    failures = [r for r in caplog.records if r.getMessage() == "reply not delivered"]
    assert failures and failures[0].activity_id == activity["id"]
    server.connector.fail_with = None
    assert status_of("da", await server.say("status", personal())).phases[1][1:] == (1, 6)  # the write holds


async def test_info_logs_hold_ids_not_message_text(server, caplog):
    with caplog.at_level("INFO"):
        await server.say("tilmeld Aarhus hemmelig-tekst-123", personal())
    assert caplog.records
    assert not any("hemmelig-tekst-123" in r.getMessage() or "hemmelig-tekst-123" in str(vars(r)) for r in caplog.records)


async def test_clients_without_cards_get_the_text_twin(server, content):
    activity = server.message("hvad betyder go-live?", personal())
    activity["channelId"] = "slack"
    assert await server.post(activity) < 300
    reply = server.connector.sent[-1]
    term = content.term("go-live")
    assert not reply.get("attachments") and reply["text"].startswith(f"**{term.term.da}**: {term.definition.da}")


async def test_only_teams_vouches_for_the_tenant(server):
    """Web Chat and Direct Line clients write channelData themselves: a forged tenant there opens nothing."""
    await server.say("tilmeld Aarhus", channel())
    forged = server.message("status", channel())
    forged["channelId"] = "webchat"
    assert await server.post(forged) < 300
    assert t("da", "tenant.refused", name="Aarhus Kommune") in server.connector.texts()[-1]
