"""Milestones (idriftsættelsesdato, go-live): the date parser over a corpus of chat phrasings, and setting,
refusing and showing the dates end to end over HTTP in Danish and English, including a wave's shared dates.

Expected texts are the catalog wording (content/locale/*/LC_MESSAGES/messages.po, through tests/wording.py) and
the glossary's own terms (content/data/glossary.yaml), read here independently of the product's loader. The harness clock is
2026-11-27 09:30 UTC.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from babel.dates import format_timedelta

import bot.app
from bot.app import make_app
from bot.config import Config
from content import load_content
from content.catalogs import Catalogs
from dialogs.context import Services
from dialogs.dates import DateError, parse_date
from dialogs.understanding import Understander
from tests.harness import BotServer, Person, answer_text, personal
from tests.wording import t

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "dates.yaml"
GLOSSARY = {t["id"]: t for t in yaml.safe_load((ROOT / "content/data/glossary.yaml").read_text("utf-8"))["terms"]}
TODAY = date(2026, 11, 27)  # the harness clock's day in Copenhagen
BOTH = pytest.mark.parametrize("lang", ["da", "en"])
pytestmark = pytest.mark.both_stores  # the tests with a bot run on the data dir and on PostgreSQL (tests/conftest.py)
LOCALE = {"da": "da-DK", "en": "en-US"}
WHEN = {"da": "27. nov. 2026 kl. 10.30", "en": "27 Nov 2026, 10:30"}
STAMP = "2026-11-27T09:30:00+00:00"


@pytest.fixture(scope="module", autouse=True)
def _content_parsed_once(content):
    """Each default server still builds its own app, catalogs, understander and store; content is shared."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bot.app, "load_content", lambda *args, **kwargs: content)
        yield


# -- 1. the parser over the phrasing corpus ------------------------------------------------------------------
def _corpus() -> list[dict]:
    return yaml.safe_load(CORPUS.read_text(encoding="utf-8"))


def _parsed(text: str, today: date = TODAY) -> str | None:
    """parse_date's answer in the corpus's terms: "YYYY-MM-DD", None, or "invalid"."""
    try:
        found = parse_date(text, today)
    except DateError:
        return "invalid"
    return found.isoformat() if found else None


def test_parse_date_reads_every_phrasing_of_the_corpus():
    corpus = _corpus()
    assert len(corpus) >= 40
    wrong = [f"{e['text']!r}: expected {e['expected']!r}, got {_parsed(e['text'])!r}"
             for e in corpus if _parsed(e["text"]) != e["expected"]]
    assert not wrong, f"{len(wrong)} of {len(corpus)} phrasings wrong:\n" + "\n".join(wrong)


def test_the_corpus_covers_every_required_shape():
    corpus = {e["text"]: e["expected"] for e in _corpus()}
    for text in ("2027-03-01", "15-02-2027", "01/03/27", "01.03.2027", "1. marts 2027", "1 mar 2027", "1. mar. 2027",
                 "March 1, 2027", "1st of March 2027", "1. marts", "March 1"):
        assert corpus.get(text, "").startswith("20"), text
    for text in ("31-02-2027", "32. marts 2027", "2027-13-01"):
        assert corpus.get(text) == "invalid", text
    for text in ("ingen dato", "i morgen"):
        assert text in corpus and corpus[text] is None, text
    outcomes = set(map(str, corpus.values()))
    assert {"None", "invalid"} <= outcomes and len(outcomes) > 10


def test_leap_day_without_a_year_is_its_next_occurrence():
    assert parse_date("29. februar", date(2027, 11, 27)) == date(2028, 2, 29)


def test_two_digit_year_after_a_month_name_is_not_ignored():
    assert parse_date("1. marts 28", TODAY) == date(2028, 3, 1)


# -- helpers for the HTTP tests --------------------------------------------------------------------------------
REGISTER = {"da": "tilmeld {name}", "en": "register {name}"}  # what people type
# Dates as the replies spell them (Babel "long": da_DK / en_GB).
SPELT = {
    "2026-11-27": {"da": "27. november 2026", "en": "27 November 2026"},
    "2026-12-11": {"da": "11. december 2026", "en": "11 December 2026"},
    "2027-01-15": {"da": "15. januar 2027", "en": "15 January 2027"},
    "2027-02-01": {"da": "1. februar 2027", "en": "1 February 2027"},
    "2027-02-15": {"da": "15. februar 2027", "en": "15 February 2027"},
    "2027-03-01": {"da": "1. marts 2027", "en": "1 March 2027"},
    "2027-03-15": {"da": "15. marts 2027", "en": "15 March 2027"},
    "2026-03-01": {"da": "1. marts 2026", "en": "1 March 2026"},
    "2026-11-26": {"da": "26. november 2026", "en": "26 November 2026"},
}
# The time left as a person reads it: today is the catalog's word.today, the rest Babel's (checked against Babel
# below, so the two cannot drift apart unnoticed).
LEFT = {
    "2026-11-27": {"da": t("da", "word.today"), "en": t("en", "word.today")},
    "2026-12-11": {"da": "om 2 uger", "en": "in 2 weeks"},
    "2027-01-15": {"da": "om 2 måneder", "en": "in 2 months"},
    "2027-02-15": {"da": "om 3 måneder", "en": "in 3 months"},
    "2027-03-01": {"da": "om 3 måneder", "en": "in 3 months"},
    "2027-03-15": {"da": "om 4 måneder", "en": "in 4 months"},
}


def label(name: str, lang: str) -> str:
    return GLOSSARY[name]["term"][lang]


def set_reply(lang: str, name: str, iso: str, municipality: str = "Aarhus Kommune") -> str:
    return t(lang, "milestone.set", milestone=label(name, lang), name=municipality, date=SPELT[iso][lang],
             left=LEFT[iso][lang])


def status_line(lang: str, name: str, iso: str, wave: str | None = None) -> str:
    """A milestone in the status reply: "Go-live: 1. marts 2027 (om 3 måneder[, fra Bølge 1])"."""
    when = t(lang, "status.when.wave" if wave else "status.when", date=SPELT[iso][lang], left=LEFT[iso][lang],
             wave=wave or "")
    return t(lang, "status.milestone", name=label(name, lang), when=when)


def history_line(lang: str, detail: str) -> str:
    """A milestone set, in the history list: "- {when}: Mette Hansen satte {detail}"."""
    return "- " + t(lang, "history.milestone", when=WHEN[lang], who="Mette Hansen", detail=detail)


def milestone_lines(status: str) -> list[str]:
    """The status reply's milestone paragraphs ("Go-live: 1. marts 2027 (om 3 måneder)")."""
    names = {label(n, lang) for n in GLOSSARY if n in ("go-live", "idriftsaettelsesdato") for lang in ("da", "en")}
    return [p for p in status.split("\n\n") if p.split(": ", 1)[0] in names]


def mette(lang: str) -> Person:
    return Person(aad_id="aad-mette", name="Mette Hansen", locale=LOCALE[lang])




async def say(server, lang: str, text: str, where=None) -> str:
    before = len(server.connector.sent)
    status = await server.post(server.message(text, where or personal(), mette(lang)))
    assert status < 300, f"POST /api/messages answered {status} for {text!r}"
    return answer_text(server.connector.sent[before:])


async def register(server, lang: str, name: str = "Aarhus") -> None:
    assert f"**{name} Kommune**" in await say(server, lang, REGISTER[lang].format(name=name))




async def milestone_events(server) -> list[dict]:
    return [e for e in await server.events() if e["action"] == "milestone"]


@pytest.mark.parametrize("iso", sorted(LEFT))
def test_expected_time_left_agrees_with_babel(iso):
    days = (date.fromisoformat(iso) - TODAY).days
    for lang in ("da", "en"):
        if days == 0:
            assert LEFT[iso][lang] == t(lang, "word.today")
            continue
        babel = format_timedelta(timedelta(days=days), add_direction=True, threshold=1.5, locale=lang)
        assert LEFT[iso][lang] == babel
        assert re.fullmatch(r"om \d+ (uger|måneder)|in \d+ (weeks|months)", LEFT[iso][lang])


# -- 2. setting a date over HTTP ---------------------------------------------------------------------------------
SETTINGS = [
    ("da", "go-live er 1. marts 2027", "go-live", "2027-03-01"),
    ("da", "sæt idriftsættelsesdato til 15-02-2027", "idriftsaettelsesdato", "2027-02-15"),
    ("da", "vores go-live bliver den 01.03.2027", "go-live", "2027-03-01"),
    ("en", "our go-live is 2027-03-01", "go-live", "2027-03-01"),
    ("en", "set the commissioning date to 15-02-2027", "idriftsaettelsesdato", "2027-02-15"),
    ("en", "go-live is March 1, 2027", "go-live", "2027-03-01"),
]


@pytest.mark.parametrize("lang, utterance, name, iso", SETTINGS)
async def test_setting_a_date_confirms_stores_and_shows_it(server, lang, utterance, name, iso):
    await register(server, lang)
    assert await say(server, lang, utterance) == set_reply(lang, name, iso)
    (event,) = await milestone_events(server)
    assert event["details"] == {"name": name, "date": iso}
    assert event["by"] == {"id": "aad-mette", "name": "Mette Hansen"} and event["at"] == STAMP
    assert event["task_id"] is None
    status = await say(server, lang, "status")
    assert milestone_lines(status) == [status_line(lang, name, iso)]


@BOTH
async def test_both_dates_in_status_and_history(server, lang):
    await register(server, lang)
    first = {"da": "go-live er 1. marts 2027", "en": "our go-live is 2027-03-01"}[lang]
    second = {"da": "sæt idriftsættelsesdato til 15-02-2027", "en": "set the idriftsættelsesdato to 15-02-2027"}[lang]
    assert await say(server, lang, first) == set_reply(lang, "go-live", "2027-03-01")
    assert await say(server, lang, second) == set_reply(lang, "idriftsaettelsesdato", "2027-02-15")
    status = await say(server, lang, "status")
    assert milestone_lines(status) == [status_line(lang, "idriftsaettelsesdato", "2027-02-15"),
                                       status_line(lang, "go-live", "2027-03-01")]
    assert SPELT["2027-03-01"][lang] in status
    assert LEFT["2027-03-01"][lang] in status
    history = (await say(server, lang, "historik" if lang == "da" else "history")).splitlines()
    go_live = history_line(lang, f"{label('go-live', lang)}: {SPELT['2027-03-01'][lang]}")
    commissioning = history_line(lang, f"{label('idriftsaettelsesdato', lang)}: {SPELT['2027-02-15'][lang]}")
    assert history[2:4] == [commissioning, go_live], history  # newest first, under the header


@BOTH
async def test_time_left_is_spelt_for_the_reader(server, lang):
    await register(server, lang)
    for iso in ("2026-11-27", "2026-12-11", "2027-01-15"):  # today, in 2 weeks, in 2 months
        utterance = {"da": f"go-live er {iso}", "en": f"our go-live is {iso}"}[lang]
        assert await say(server, lang, utterance) == set_reply(lang, "go-live", iso)
        assert milestone_lines(await say(server, lang, "status")) == [status_line(lang, "go-live", iso)]


@BOTH
async def test_setting_a_date_again_replaces_it(server, lang):
    await register(server, lang)
    await say(server, lang, {"da": "go-live er 1. marts 2027", "en": "our go-live is 2027-03-01"}[lang])
    utterance = {"da": "flyt go-live til 15. marts 2027", "en": "move the go-live to 15 March 2027"}[lang]
    assert await say(server, lang, utterance) == set_reply(lang, "go-live", "2027-03-15")
    assert milestone_lines(await say(server, lang, "status")) == [status_line(lang, "go-live", "2027-03-15")]
    assert [e["details"]["date"] for e in await milestone_events(server)] == ["2027-03-01", "2027-03-15"]


# -- 3. refusals store nothing -----------------------------------------------------------------------------------
async def _nothing_stored(server, lang: str, events_before: int = 0) -> None:
    assert len(await milestone_events(server)) == events_before
    status = await say(server, lang, "status")
    assert len(milestone_lines(status)) == events_before


@pytest.mark.parametrize("lang, utterance, iso", [
    ("da", "go-live er 1. marts 2026", "2026-03-01"),
    ("da", "sæt go-live til 26-11-2026", "2026-11-26"),  # yesterday
    ("en", "our go-live is 2026-03-01", "2026-03-01"),
    ("en", "go-live is 26 November 2026", "2026-11-26"),
])
async def test_a_past_date_is_questioned_and_not_stored(server, lang, utterance, iso):
    await register(server, lang)
    assert await say(server, lang, utterance) == t(lang, "milestone.past", date=SPELT[iso][lang],
                                                    milestone=label("go-live", lang))
    await _nothing_stored(server, lang)


@BOTH
async def test_go_live_before_the_commissioning_date_is_questioned_naming_both(server, lang):
    await register(server, lang)
    await say(server, lang, {"da": "sæt idriftsættelsesdato til 15-02-2027",
                             "en": "set the commissioning date to 15-02-2027"}[lang])
    utterance = {"da": "go-live er 1. februar 2027", "en": "our go-live is 1 February 2027"}[lang]
    expected = t(lang, "milestone.order", golive=SPELT["2027-02-01"][lang], commissioning=SPELT["2027-02-15"][lang])
    assert await say(server, lang, utterance) == expected
    await _nothing_stored(server, lang, events_before=1)


@BOTH
async def test_a_commissioning_date_after_go_live_is_questioned_naming_both(server, lang):
    await register(server, lang)
    await say(server, lang, {"da": "go-live er 1. marts 2027", "en": "our go-live is 2027-03-01"}[lang])
    utterance = {"da": "sæt idriftsættelsesdato til 15-03-2027", "en": "set the commissioning date to 15-03-2027"}[lang]
    expected = t(lang, "milestone.order", golive=SPELT["2027-03-01"][lang], commissioning=SPELT["2027-03-15"][lang])
    assert await say(server, lang, utterance) == expected
    await _nothing_stored(server, lang, events_before=1)
    assert [e["details"]["name"] for e in await milestone_events(server)] == ["go-live"]


@pytest.mark.parametrize("lang, utterance, key, text", [
    ("da", "go-live er 31-02-2027", "milestone.invalid", "31-02-2027"),
    ("da", "go-live er 32 marts 2027", "milestone.invalid", "32 marts 2027"),
    ("en", "our go-live is 2027-13-01", "milestone.invalid", "2027-13-01"),
    ("da", "go-live er snart", "milestone.unreadable", "snart"),
    ("da", "go-live er i morgen", "milestone.unreadable", "i morgen"),  # relative dates are not read (dates.yaml)
    ("en", "our go-live is Soon", "milestone.unreadable", "Soon"),  # echoed as typed, not folded
])
async def test_an_unreadable_or_invalid_date_says_so_and_stores_nothing(server, lang, utterance, key, text):
    await register(server, lang)
    assert await say(server, lang, utterance) == t(lang, key, text=text, milestone=label("go-live", lang))
    await _nothing_stored(server, lang)


# -- 4. waves: shared dates from content/data/project.yaml ---------------------------------------------------------
WAVE = {"id": "boelge-1", "name": {"da": "Bølge 1", "en": "Wave 1"},
        "milestones": {"idriftsaettelsesdato": date(2027, 2, 15), "go-live": date(2027, 3, 1)}, "members": ["0751"]}


@pytest.fixture(scope="module")
def wave_content(tmp_path_factory):
    """A copy of content/ whose project has one wave with Aarhus (0751) as its only member."""
    root = tmp_path_factory.mktemp("content")
    shutil.copytree(ROOT / "content", root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    path = root / "data" / "project.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["project"]["waves"] = [WAVE]
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    content = load_content(root)
    assert content.project.wave_of("0751").name.da == "Bølge 1"
    return content


@dataclass
class WaveServer(BotServer):
    """The harness server, but on Services built from a given content (make_app's `services`)."""

    content: object = None

    def build_app(self) -> web.Application:
        config = Config(data_dir=self.data_dir, port=0, **self.config_overrides)
        services = Services(content=self.content, catalogs=Catalogs(), store=config.open_store(),
                            understander=Understander.of(self.content))
        return make_app(config, clock=self.clock, services=services)


@pytest.fixture
async def wave_server(tmp_path, wave_content, store_config):
    server = WaveServer(data_dir=tmp_path / "data", content=wave_content, config_overrides=dict(store_config))
    await server.start()
    yield server
    await server.close()


@BOTH
async def test_a_wave_member_shows_the_waves_dates_and_its_own_date_wins(wave_server, lang):
    wave = WAVE["name"][lang]
    await register(wave_server, lang)
    status = await say(wave_server, lang, "status")
    assert milestone_lines(status) == [status_line(lang, "idriftsaettelsesdato", "2027-02-15", wave),
                                       status_line(lang, "go-live", "2027-03-01", wave)]
    assert status_line(lang, "go-live", "2027-03-01", wave) in status.split("\n\n")
    assert await milestone_events(wave_server) == []  # the wave's dates are content, not the municipality's events

    own = {"da": "go-live er 15. marts 2027", "en": "our go-live is 15 March 2027"}[lang]
    assert await say(wave_server, lang, own) == set_reply(lang, "go-live", "2027-03-15")
    status = await say(wave_server, lang, "status")
    assert milestone_lines(status) == [status_line(lang, "idriftsaettelsesdato", "2027-02-15", wave),
                                       status_line(lang, "go-live", "2027-03-15")]


@BOTH
async def test_a_wave_date_counts_in_the_order_check(wave_server, lang):
    await register(wave_server, lang)
    utterance = {"da": "go-live er 1. februar 2027", "en": "our go-live is 1 February 2027"}[lang]
    expected = t(lang, "milestone.order", golive=SPELT["2027-02-01"][lang], commissioning=SPELT["2027-02-15"][lang])
    assert await say(wave_server, lang, utterance) == expected
    assert await milestone_events(wave_server) == []


@BOTH
async def test_a_municipality_outside_the_wave_has_no_dates(wave_server, lang):
    await register(wave_server, lang, "Odense")
    status = await say(wave_server, lang, "status")
    assert status.startswith("**Odense Kommune**")
    assert milestone_lines(status) == []
    assert WAVE["name"]["da"] not in status and WAVE["name"]["en"] not in status


# -- 5. regressions: bugs found while writing these tests, fixed -----------------------------------------------
@BOTH
async def test_we_go_live_on_a_date_sets_go_live(server, lang):
    await register(server, lang)
    utterance = {"da": "vi går live den 1. marts 2027", "en": "we go live on 1 March 2027"}[lang]
    assert await say(server, lang, utterance) == set_reply(lang, "go-live", "2027-03-01")


async def test_tomorrow_is_not_spelt_in_hours(server):
    await register(server, "da")
    reply = await say(server, "da", "go-live er 28-11-2026")
    assert reply == t("da", "milestone.set", milestone=label("go-live", "da"), name="Aarhus Kommune",
                      date="28. november 2026", left=t("da", "word.tomorrow"))
    assert "timer" not in reply


async def test_an_invalid_date_is_echoed_as_typed(server):
    await register(server, "da")
    assert await say(server, "da", "go-live er 32. Marts 2027") == t("da", "milestone.invalid", text="32. Marts 2027")
