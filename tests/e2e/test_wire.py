"""The fast Connector client puts the same JSON on the wire as botbuilder's msrest serializer would."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from botbuilder.core import CardFactory, MessageFactory
from botbuilder.schema import (
    Activity,
    ChannelAccount,
    ConversationAccount,
    ConversationParameters,
    Entity,
    Mention,
    TextFormatTypes,
)

from bot.wire import to_json, to_wire
from dialogs import cards


def _reply() -> Activity:
    message = MessageFactory.text("**Fase 1: Opstart** – åbne opgaver\n\n1. Udpeg projektejer")
    message.text_format = TextFormatTypes.markdown
    message.conversation = ConversationAccount(id="19:general@thread.tacv2", conversation_type="channel", tenant_id="t")
    message.from_property = ChannelAccount(id="28:bot", name="Implementeringsassistent")
    message.recipient = ChannelAccount(id="29:mette", name="Mette Hansen", aad_object_id="aad-mette")
    message.reply_to_id = "1700000000000"
    message.service_url = "http://127.0.0.1:1/"
    message.channel_id = "msteams"
    message.locale = "da-DK"
    message.timestamp = datetime(2026, 11, 27, 9, 30, 0, 123000, tzinfo=UTC)
    return message


def _card_reply() -> Activity:
    card = cards.card([cards.title("Titel"), cards.row("1. Udpeg projektejer", cards.button("Udført", "done", "0751",
                                                                                             task="udpeg-projektejer", p=1))],
                      "fallback", [cards.button("Hvad skal vi nu?", "next", "0751", p=1)])
    message = MessageFactory.attachment(CardFactory.adaptive_card(card))
    message.text = "✅ «Udpeg projektejer» er markeret som udført af Mette Hansen."
    message.entities = [Mention(mentioned=ChannelAccount(id="29:lars", name="Lars"), text="<at>Lars</at>", type="mention")]
    return message


def _entity_reply() -> Activity:
    activity = Activity().deserialize({"type": "message", "text": "hej", "entities": [
        {"type": "mention", "text": "<at>Bot</at>", "mentioned": {"id": "28:bot", "name": "Bot"}},
        {"type": "clientInfo", "locale": "da-DK", "country": "DK", "platform": "Web"}]})
    return activity


@pytest.mark.parametrize("build", [_reply, _card_reply], ids=["text", "card"])
def test_same_json_as_msrest(build):
    activity = build()
    assert to_wire(activity) == activity.serialize()


def test_entities_keep_what_msrest_drops():
    """msrest serialises an Entity as its type alone (its properties live in additional_properties, which
    msrest skips); the Connector then gets mentions without `mentioned`. to_wire keeps them."""
    ours, theirs = to_wire(_entity_reply()), _entity_reply().serialize()
    assert theirs["entities"] == [{"type": "mention"}, {"type": "clientInfo"}]
    assert ours["entities"][0] == {"type": "mention", "text": "<at>Bot</at>", "mentioned": {"id": "28:bot", "name": "Bot"}}
    assert {k: v for k, v in ours.items() if k != "entities"} == {k: v for k, v in theirs.items() if k != "entities"}


def test_conversation_parameters_as_msrest():
    parameters = ConversationParameters(is_group=False, bot=ChannelAccount(id="28:bot"),
                                        members=[ChannelAccount(id="29:mette")], tenant_id="t",
                                        channel_data={"tenant": {"id": "t"}})
    assert to_wire(parameters) == parameters.serialize()


def test_entity_additional_properties_are_kept():
    entity = Entity(type="mention")
    entity.additional_properties = {"mentioned": {"id": "29:x"}, "text": "<at>X</at>"}
    assert to_wire(entity) == {"type": "mention", "mentioned": {"id": "29:x"}, "text": "<at>X</at>"}


def _parameters() -> ConversationParameters:
    return ConversationParameters(is_group=False, bot=ChannelAccount(id="28:bot"), members=[ChannelAccount(id="29:mette")],
                                  tenant_id="t", channel_data={"tenant": {"id": "t"}})


@pytest.mark.parametrize("build", [_reply, _card_reply, _entity_reply, _parameters],
                         ids=["text", "card", "entities", "conversation-parameters"])
def test_bytes_on_the_wire_parse_to_the_same_json(build):
    """What the Connector client sends (to_json, json's encoder calling back for models) is to_wire's JSON."""
    assert json.loads(to_json(build())) == to_wire(build())


def test_bytes_on_the_wire_are_utf8_and_refuse_unknown_objects():
    assert "«Udpeg projektejer»".encode() in to_json(_card_reply())
    with pytest.raises(TypeError):
        to_json({"x": object()})


def test_what_only_the_json_module_can_encode_still_goes_out():
    """orjson refuses integers beyond 64 bits; a client may put one in a field the reply copies (here the
    conversation's extra properties), and the reply must still go out, as json wrote it."""
    activity = _reply()
    activity.conversation.additional_properties = {"big": 10**30, 7: "int key"}
    wire = json.loads(to_json(activity))
    assert wire["conversation"]["big"] == 10**30 and wire["conversation"]["7"] == "int key"
    assert wire == json.loads(json.dumps(to_wire(activity)))
