"""parse() builds the very Activity msrest's `Activity().deserialize(body)` builds, and refuses what msrest refuses.

bot/activity_fast.py builds ordinary Teams activities without msrest and hands everything it is not sure
of back to msrest. The reference here is msrest itself, run on the same body: every field, nested model,
additional property and timestamp (down to its tzinfo class and name) must match, every body msrest
rejects must be a BadActivity(400), and the ordinary Teams activities must not reach msrest at all.
"""
from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from botbuilder.schema import Activity
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msrest.serialization import Deserializer, Model

from bot import activity_fast
from bot.inbound import BadActivity, parse

BOT_ID = "28:bot-app-id"
TENANT = "6f1c2b7e-0000-4000-8000-000000000001"
SERVICE_URL = "https://smba.trafficmanager.net/emea/"

# -- comparing with msrest --------------------------------------------------------------------------------


def assert_same(ours: object, theirs: object, path: str = "activity") -> None:
    """Equal field by field, and of the same types all the way down (== alone takes True for 1 and a
    datetime in +01:00 for the same instant in UTC)."""
    assert type(ours) is type(theirs), f"{path}: {type(ours).__name__} != {type(theirs).__name__}"
    if isinstance(ours, Model):
        assert vars(ours).keys() == vars(theirs).keys(), path
        for name in vars(ours):
            assert_same(vars(ours)[name], vars(theirs)[name], f"{path}.{name}")
    elif isinstance(ours, dict):
        assert ours.keys() == theirs.keys(), path
        for key in ours:
            assert_same(ours[key], theirs[key], f"{path}[{key!r}]")
    elif isinstance(ours, list):
        assert len(ours) == len(theirs), path
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(ours, datetime):
        assert ours.replace(tzinfo=None) == theirs.replace(tzinfo=None), path  # the same wall-clock time
        assert type(ours.tzinfo) is type(theirs.tzinfo), path
        assert (ours.utcoffset(), ours.tzname()) == (theirs.utcoffset(), theirs.tzname()), path
    elif isinstance(ours, float) and math.isnan(ours):
        assert math.isnan(theirs), path
    else:
        assert ours == theirs, f"{path}: {ours!r} != {theirs!r}"


def raw(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False, allow_nan=True).encode("utf-8")


def msrest_activity(body: dict) -> Activity | None:
    """msrest's result, or None where it raises (parse must then answer 400)."""
    try:
        return Activity().deserialize(copy.deepcopy(body))
    except (Exception, RecursionError):
        return None


def assert_parse_matches_msrest(body: dict) -> None:
    expected = msrest_activity(body)
    if expected is None:
        with pytest.raises(BadActivity) as refused:
            parse(raw(body))
        assert refused.value.status == 400
    else:
        assert_same(parse(raw(body)), expected)


def assert_fast_path_matches_msrest(body: dict) -> None:
    """Whenever the fast path answers at all, msrest accepts the body and builds the same thing."""
    try:
        ours = activity_fast.activity_from_dict(copy.deepcopy(body))
    except activity_fast.NotCertain:
        return
    expected = msrest_activity(body)
    assert expected is not None, "the fast path accepted a body msrest rejects"
    assert_same(ours, expected)


# -- Teams activities -----------------------------------------------------------------------------------


def teams(kind: str = "personal", **fields) -> dict:
    """A Teams activity as Teams sends it, in a personal chat, a channel or a group chat."""
    conversation = {"id": "a:1personal-chat-id", "conversationType": "personal", "tenantId": TENANT}
    channel_data: dict = {"tenant": {"id": TENANT}}
    if kind == "channel":
        conversation = {"isGroup": True, "conversationType": "channel", "tenantId": TENANT,
                        "id": "19:general@thread.tacv2;messageid=1700000000000"}
        channel_data.update({"teamsTeamId": "19:team@thread.tacv2", "teamsChannelId": "19:general@thread.tacv2",
                             "team": {"id": "19:team@thread.tacv2"}, "channel": {"id": "19:general@thread.tacv2"}})
    elif kind == "groupChat":
        conversation = {"isGroup": True, "conversationType": "groupChat", "tenantId": TENANT,
                        "id": "19:meeting_abc@thread.v2"}
    body = {
        "type": "message",
        "id": "1700000000000",
        "timestamp": "2026-11-27T09:30:00.1234567Z",
        "localTimestamp": "2026-11-27T10:30:00.1234567+01:00",
        "localTimezone": "Europe/Copenhagen",
        "serviceUrl": SERVICE_URL,
        "channelId": "msteams",
        "from": {"id": "29:1user-id", "name": "Mette Hansen", "aadObjectId": "aad-mette"},
        "conversation": conversation,
        "recipient": {"id": BOT_ID, "name": "Implementeringsassistent"},
        "textFormat": "plain",
        "locale": "da-DK",
        "text": "status",
        "entities": [{"locale": "da-DK", "country": "DK", "platform": "Web", "timezone": "Europe/Copenhagen",
                      "type": "clientInfo"}],
        "channelData": channel_data,
    }
    body.update(fields)
    return body


def mention(who: str = BOT_ID, name: str = "Implementeringsassistent") -> dict:
    return {"type": "mention", "text": f"<at>{name}</at>", "mentioned": {"id": who, "name": name}}


CARD_VALUE = {"action": "done", "municipality": "0751", "task": "udpeg-projektejer", "p": 1, "confirm": True,
              "note": None, "weights": [1.5, 2], "nested": {"deeper": {"list": [{"a": "b"}]}}}

TEAMS_ACTIVITIES = {
    "personal message": teams(),
    "channel message with mention": teams("channel", text="<at>Implementeringsassistent</at> status",
                                          entities=[mention(), teams()["entities"][0]]),
    "group chat, two mentions": teams("groupChat", text="<at>Implementeringsassistent</at> tildel <at>Lars</at>",
                                      entities=[mention(), mention("29:lars", "Lars")]),
    "card press": teams(text=None, value=CARD_VALUE, replyToId="1699999999999"),
    "card press in a channel": teams("channel", value={"action": "next", "municipality": "0751"}),
    "conversationUpdate, bot added to a team": teams(
        "channel", type="conversationUpdate", text=None, entities=None,
        membersAdded=[{"id": BOT_ID}, {"id": "29:1user-id", "aadObjectId": "aad-mette"}],
        channelData={"tenant": {"id": TENANT}, "team": {"id": "19:team@thread.tacv2", "name": "Projekt",
                                                        "aadGroupId": "g-1"}, "eventType": "teamMemberAdded"}),
    "conversationUpdate, members removed": teams(type="conversationUpdate", text=None,
                                                 membersRemoved=[{"id": "29:1user-id"}]),
    "installationUpdate": teams(type="installationUpdate", action="add", text=None, entities=None,
                                channelData={"tenant": {"id": TENANT}, "source": {"name": "message"}}),
    "installationUpdate remove": teams(type="installationUpdate", action="remove", text=None),
    "invoke, adaptive card action": teams(type="invoke", name="adaptiveCard/action", text=None, value={
        "action": {"type": "Action.Execute", "verb": "done", "data": {"task": "x"}}, "trigger": "manual"}),
    "invoke, task fetch": teams(type="invoke", name="task/fetch", value={"data": {"type": "task/fetch"}}),
    "message with attachments": teams(attachments=[
        {"contentType": "application/vnd.microsoft.teams.file.download.info", "name": "plan.xlsx",
         "content": {"downloadUrl": "https://x/plan.xlsx", "uniqueId": "u", "fileType": "xlsx"},
         "contentUrl": "https://x/plan.xlsx"},
        {"contentType": "text/html", "content": "<div>status</div>"}]),
    "messageReaction": teams(type="messageReaction", text=None, replyToId="1699999999999",
                             reactionsAdded=[{"type": "like"}], reactionsRemoved=[{"type": "heart"}]),
    "timestamps with offsets": teams(timestamp="2026-11-27T09:30:00+00:00",
                                     localTimestamp="2026-03-29T01:59:59.999-05:30"),
    "timestamps without fraction, with Z": teams(timestamp="2026-11-27T09:30:00Z",
                                                 localTimestamp="2026-11-27T09:30:00Z"),
    "timestamps with -00:00 and 1 digit": teams(timestamp="2026-11-27T09:30:00.5-00:00",
                                                localTimestamp="2026-11-27T23:59:59.000000001+13:00"),
    "bench message (python isoformat)": teams(timestamp=datetime.now(UTC).isoformat(), localTimestamp=None),
    "missing optional fields": {"type": "message", "serviceUrl": SERVICE_URL, "conversation": {"id": "a:x"}},
    "nulls everywhere": teams(id=None, timestamp=None, recipient=None, entities=None, channelData=None, text=None),
    "unknown keys at every level": teams(
        futureField={"x": [1, 2]}, rawTimestamp="2026", entities=[mention() | {"extra": 1}],
        **{"from": {"id": "29:u", "name": "N", "userRole": "owner", "tenantId": TENANT},
           "recipient": {"id": BOT_ID, "name": "Bot", "role": "bot", "properties": {"a": 1}}},
        attachments=[{"contentType": "text/plain", "content": "x", "weird": None}]),
    "empty lists and dicts": teams(entities=[], attachments=[], membersAdded=[], value={}, channelData={}),
    "null items in lists": teams(entities=[None, mention()], membersAdded=[None]),
    "suggested actions, relatesTo, text highlights": teams(
        suggestedActions={"to": ["29:u", None], "actions": [{"type": "imBack", "title": "Ja", "value": "ja"}]},
        relatesTo={"activityId": "1", "user": {"id": "29:u"}, "bot": {"id": BOT_ID}, "conversation": {"id": "c"},
                   "channelId": "msteams", "serviceUrl": SERVICE_URL},
        textHighlights=[{"text": "status", "occurrence": 1}], listenFor=["ja", "nej"],
        expiration="2026-12-01T00:00:00Z",
        importance="high", deliveryMode="normal", callerId="urn:botframework:azure", inputHint="acceptingInput"),
}


@pytest.mark.parametrize("body", TEAMS_ACTIVITIES.values(), ids=TEAMS_ACTIVITIES.keys())
def test_teams_activities_take_the_fast_path_and_equal_msrest(body, monkeypatch):
    expected = msrest_activity(body)
    assert expected is not None

    msrest_calls = []
    monkeypatch.setattr(Activity, "deserialize", lambda *args, **kwargs: msrest_calls.append(args))
    assert_same(parse(raw(body)), expected)
    assert msrest_calls == [], "an ordinary Teams activity went to msrest"


def test_mention_data_lives_in_additional_properties():
    activity = parse(raw(TEAMS_ACTIVITIES["group chat, two mentions"]))
    mentions = [e.additional_properties for e in activity.entities]
    assert [m["mentioned"]["id"] for m in mentions] == [BOT_ID, "29:lars"]
    assert mentions[1]["text"] == "<at>Lars</at>"
    # Teams spells it tenantId, botbuilder's map tenantID: msrest keeps it aside, and so does the fast path.
    assert activity.conversation.tenant_id is None
    assert activity.conversation.additional_properties == {"tenantId": TENANT}


def test_timestamps_keep_isodate_time_zones():
    activity = parse(raw(teams(timestamp="2026-11-27T09:30:00.1234567Z", localTimestamp="2026-11-27T10:30:00.5+01:00")))
    assert activity.timestamp == datetime(2026, 11, 27, 9, 30, 0, 123456, tzinfo=UTC)
    assert activity.local_timestamp.utcoffset() == timedelta(hours=1)
    assert (activity.local_timestamp.hour, activity.local_timestamp.microsecond) == (10, 500000)
    assert activity.local_timestamp.tzname() == "+01:00"  # isodate's FixedOffset name, as msrest gives it


# -- wrong-typed and unusual fields: msrest's coercion or msrest's 400 -----------------------------------

ODD_FIELDS = {
    "text is a number": {"text": 5},
    "text is a list": {"text": ["not", "a", "string"]},
    "text is a bool": {"text": True},
    "text is an object": {"text": {"a": 1}},
    "id is a float": {"id": 1.5},
    "isGroup is 'true'": {"conversation": {"id": "c", "isGroup": "true"}},
    "isGroup is 1": {"conversation": {"id": "c", "isGroup": 1}},
    "isGroup is 0.0": {"conversation": {"id": "c", "isGroup": 0.0}},
    "isGroup is 'maybe'": {"conversation": {"id": "c", "isGroup": "maybe"}},
    "isGroup is a list": {"conversation": {"id": "c", "isGroup": []}},
    "historyDisclosed is 'False'": {"historyDisclosed": "False"},
    "from is a string": {"from": "29:user"},
    "from is a list": {"from": [{"id": "29:user"}]},
    "recipient is a number": {"recipient": 7},
    "entities is a string": {"entities": "nope"},
    "entities is an object": {"entities": {"type": "mention"}},
    "entity is a number": {"entities": [5]},
    "entity is a list": {"entities": [[mention()]]},
    "entity type is a number": {"entities": [{"type": 3, "text": "x"}]},
    "membersAdded is an object": {"membersAdded": {"id": BOT_ID}},
    "membersAdded item is a string": {"membersAdded": [BOT_ID]},
    "attachments is a string": {"attachments": "x"},
    "channelData is a string": {"channelData": "tenant"},
    "channelData is a list": {"channelData": [1, 2]},
    "value is a string": {"value": "ja"},
    "value is a number": {"value": 42},
    "timestamp is garbage": {"timestamp": "not a date"},
    "timestamp is empty": {"timestamp": ""},
    "timestamp is a number": {"timestamp": 1700000000},
    "timestamp is an object": {"timestamp": {"t": 1}},
    "timestamp lower case": {"timestamp": "2026-11-27t09:30:00z"},
    "timestamp without zone": {"timestamp": "2026-11-27T09:30:00"},
    "timestamp without seconds": {"timestamp": "2026-11-27T09:30Z"},
    "timestamp basic format": {"timestamp": "20261127T093000Z"},
    "timestamp offset without colon": {"timestamp": "2026-11-27T09:30:00+0100"},
    "timestamp offset hours only": {"timestamp": "2026-11-27T09:30:00+01"},
    "timestamp comma fraction": {"timestamp": "2026-11-27T09:30:00,5Z"},
    "timestamp February 30th": {"timestamp": "2026-02-30T09:30:00Z"},
    "timestamp hour 24": {"timestamp": "2026-11-27T24:00:00Z"},
    "timestamp leap second": {"timestamp": "2016-12-31T23:59:60Z"},
    "timestamp offset +24:00": {"timestamp": "2026-11-27T09:30:00+24:00"},
    "timestamp offset +99:99": {"timestamp": "2026-11-27T09:30:00+99:99"},
    "timestamp year 9999 west of UTC": {"timestamp": "9999-12-31T23:30:00-01:00"},
    "timestamp year 1 east of UTC": {"timestamp": "0001-01-01T00:30:00+01:00"},
    "timestamp year 0": {"timestamp": "0000-01-01T00:00:00Z"},
    "timestamp Arabic-Indic digits": {"timestamp": "٢٠٢٦-11-27T09:30:00Z"},
    "timestamp 30 fraction digits": {"timestamp": "2026-11-27T09:30:00." + "9" * 30 + "Z"},
    "timestamp trailing text": {"timestamp": "2026-11-27T09:30:00Zjunk"},
    "localTimestamp date only": {"localTimestamp": "2026-11-27"},
    "expiration odd": {"expiration": "2026-11-27T09:30:00.123+05:45"},
    "occurrence is a string": {"textHighlights": [{"text": "x", "occurrence": "2"}]},
    "occurrence is a bool": {"textHighlights": [{"text": "x", "occurrence": True}]},
    "occurrence is a float": {"textHighlights": [{"text": "x", "occurrence": 2.7}]},
    "listenFor has a number": {"listenFor": ["ja", 1, None]},
    "semanticAction with entities": {"semanticAction": {"id": "s", "entities": {"e": {"type": "x"}}, "state": "done"}},
    "semanticAction entities as a list": {"semanticAction": {"entities": [{"key": "e", "value": {"type": "x"}}]}},
    "relatesTo is a list": {"relatesTo": []},
    "suggestedActions to is a string": {"suggestedActions": {"to": "29:u"}},
    "properties is a string": {"recipient": {"id": BOT_ID, "properties": "p"}},
    "deep but few brackets value": {"value": json.loads('{"a":' * 40 + "1" + "}" * 40)},
    "value deeper than the fast path takes": {"value": json.loads("[" * 150 + "]" * 150)},
    "many brackets in text": {"text": "{[" * 200},
}


@pytest.mark.parametrize("fields", ODD_FIELDS.values(), ids=ODD_FIELDS.keys())
def test_odd_fields_get_msrest_result_or_400(fields):
    body = teams("channel", **fields)
    assert_parse_matches_msrest(body)
    assert_fast_path_matches_msrest(body)


def test_wrong_typed_fields_coerce_as_msrest_does():
    activity = parse(raw(teams(text=5, conversation={"id": "c", "isGroup": "true"})))
    assert activity.text == "5" and activity.conversation.is_group is True


@pytest.mark.parametrize("fields", [{"timestamp": "not a date"}, {"from": "x"}, {"entities": "nope"},
                                    {"conversation": {"id": "c", "isGroup": "maybe"}}, {"membersAdded": [5]}])
def test_what_msrest_rejects_is_400(fields):
    assert msrest_activity(teams(**fields)) is None
    with pytest.raises(BadActivity) as refused:
        parse(raw(teams(**fields)))
    assert (refused.value.status, str(refused.value)) == (400, "body is not a Bot Framework activity")


# -- bodies refused before any deserialising: unchanged ---------------------------------------------------

REFUSED = {
    b"\xff\xfe not utf-8": "body is not valid JSON in UTF-8",
    b'{"type": "message", "text": ': "body is not valid JSON in UTF-8",
    b'{"type": "message", "text": "\xed\xa0\x80"}': "body is not valid JSON in UTF-8",
    b"[" * 100_000: "body is not valid JSON in UTF-8",
    json.dumps(teams(text="a \ud800")).encode(): "body contains text that is not valid Unicode",
    b"[1, 2]": "body is not a Bot Framework activity (no type)",
    b'"message"': "body is not a Bot Framework activity (no type)",
    b"{}": "body is not a Bot Framework activity (no type)",
    b'{"type": 7}': "body is not a Bot Framework activity (no type)",
    b'{"type": ""}': "body is not a Bot Framework activity (no type)",
    b'{"type": "message", "text": "status"}': "activity has no conversation.id",
    b'{"type": "message", "conversation": {"id": 5}}': "activity has no conversation.id",
    b'{"type": "message", "conversation": {"id": "x"}}': "activity has no http(s) serviceUrl",
    b'{"type": "message", "conversation": {"id": "x"}, "serviceUrl": 5}': "activity has no http(s) serviceUrl",
    b'{"type": "message", "conversation": {"id": "x"}, "serviceUrl": "ftp://x"}': "activity has no http(s) serviceUrl",
}


@pytest.mark.parametrize("body", REFUSED.keys(), ids=[m + f" #{i}" for i, m in enumerate(REFUSED.values())])
def test_bodies_refused_before_deserialising_keep_their_400(body):
    with pytest.raises(BadActivity) as refused:
        parse(body)
    assert (refused.value.status, str(refused.value)) == (400, REFUSED[body])


# -- properties ----------------------------------------------------------------------------------------------

small_text = st.text(max_size=8)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), small_text)
any_json = st.recursive(json_scalar, lambda c: st.lists(c, max_size=3) | st.dictionaries(small_text, c, max_size=3),
                        max_leaves=6)

# Teams' form: a Z or an offset, any number of fraction digits (Teams sends 7, Python's isoformat 6 or none).
zones = st.one_of(st.just("Z"), st.builds(lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
                                          st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59)))


def written_out(moment: datetime, digits: int, zone: str) -> str:
    fraction = f"{moment.microsecond:06d}{moment.microsecond:06d}"[:digits]
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
            f"{moment.second:02d}" + (f".{fraction}" if digits else "") + zone)


teams_timestamps = st.builds(written_out, st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1)),
                             st.integers(0, 12), zones)
timestamps = st.one_of(teams_timestamps,
                       st.builds(written_out, st.datetimes(), st.integers(0, 12), zones),  # years 1-9999
                       st.from_regex(activity_fast._TEAMS_TIMESTAMP, fullmatch=True),  # invalid dates too
                       st.sampled_from(["2026-11-27T09:30:00", "2026-11-27t09:30:00z", "2026-11-27T09:30Z", "", "x",
                                        "2026-11-27T09:30:00+0100", "9999-12-31T23:59:59-23:59"]),
                       any_json)


def plausible(type_name: str, depth: int, noisy: bool) -> st.SearchStrategy:
    """Values for one _attribute_map type. Clean: right-typed or null, what the fast path must build.
    Noisy: mostly right-typed, sometimes values msrest coerces, sometimes any JSON at all."""
    if type_name == "str":
        right = st.one_of(small_text, st.sampled_from(["message", "msteams", "mention", BOT_ID, "da-DK"]))
        odd = st.sampled_from([5, 1.5, True, ["a"], {"a": 1}])
    elif type_name == "bool":
        right, odd = st.booleans(), st.sampled_from(["true", "False", "1", "0", 1, 0, 1.0, "yes", 2])
    elif type_name == "int":
        right, odd = st.integers(-2**70, 2**70), st.sampled_from(["2", True, 2.5, "x", "1e3"])
    elif type_name == "iso-8601":
        right, odd = teams_timestamps, timestamps
    elif type_name == "object":
        return any_json
    elif type_name.startswith("[") and type_name.endswith("]"):
        right = st.lists(st.one_of(st.none(), plausible(type_name[1:-1], depth, noisy)), max_size=3)
        odd = st.sampled_from(["x", {"a": 1}, 3])
    elif type_name.startswith("{"):
        right = st.dictionaries(small_text, plausible(type_name[1:-1], depth, noisy), max_size=2)
        odd = st.sampled_from(["x", [], [{"key": "k", "value": {}}]])
    elif type_name in activity_fast._CLASSES_BY_NAME and depth < 2:
        right = shaped(activity_fast._CLASSES_BY_NAME[type_name], depth + 1, noisy)
        odd = st.sampled_from(["x", [], 3, [{}]])
    else:
        right = odd = st.just({})
    if not noisy:
        return st.one_of(right, right, right, st.none())
    return st.one_of(right, right, right, right, right, right, st.none(), odd, any_json)


def shaped(model: type, depth: int, noisy: bool) -> st.SearchStrategy[dict]:
    """A JSON object for a model: any subset of its mapped keys, plus a few unknown ones."""
    optional = {spec["key"]: plausible(spec["type"], depth, noisy) for spec in model._attribute_map.values()}
    if model.__name__ == "Entity":
        optional.update({"text": any_json, "mentioned": plausible("ChannelAccount", depth, noisy)})
    mapped = st.fixed_dictionaries({}, optional=optional)
    return st.builds(lambda known, unknown: {**unknown, **known}, mapped,
                     st.dictionaries(small_text, any_json, max_size=2))


@st.composite
def activity_bodies(draw, noisy: bool) -> dict:
    """Activity-shaped dicts that pass parse()'s own checks, so msrest and the fast path decide the rest."""
    body = draw(shaped(Activity, 0, noisy))
    body["type"] = draw(st.sampled_from(["message", "conversationUpdate", "installationUpdate", "invoke", "event"]))
    conversation = body.get("conversation")
    body["conversation"] = {**(conversation if isinstance(conversation, dict) else {}),
                            "id": draw(st.sampled_from(["a:1", "19:general@thread.tacv2"]))}
    body["serviceUrl"] = SERVICE_URL
    return body


PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROPERTY_SETTINGS
@given(body=activity_bodies(noisy=False))
def test_right_typed_activity_bodies_equal_msrest(body):
    assert_parse_matches_msrest(body)
    assert_fast_path_matches_msrest(body)


@PROPERTY_SETTINGS
@given(body=activity_bodies(noisy=True))
def test_any_activity_shaped_body_parses_as_msrest_or_is_an_equal_400(body):
    assert_parse_matches_msrest(body)
    assert_fast_path_matches_msrest(body)


@PROPERTY_SETTINGS
@given(teams_body=st.sampled_from(list(TEAMS_ACTIVITIES.values())), timestamp=timestamps,
       local=timestamps)
def test_teams_activities_with_any_timestamps(teams_body, timestamp, local):
    body = {**teams_body, "timestamp": timestamp, "localTimestamp": local}
    assert_parse_matches_msrest(body)
    assert_fast_path_matches_msrest(body)


@settings(max_examples=2000, deadline=None, database=None)
@given(text=timestamps)
def test_teams_timestamp_is_isodate_via_msrest_or_not_certain(text):
    try:
        ours = activity_fast._teams_timestamp(text)
    except activity_fast.NotCertain:
        return
    assert_same(ours, Deserializer.deserialize_iso(text), f"timestamp {text!r}")
