"""KOMBIT's consultant view end to end, over HTTP: who may see it, whether its numbers are right, the CSV export.

The data dir is generated (tests/portfolio_data.py): all 98 municipalities, in three waves of a copied content
dir, each at its own stage, written in the store's own file formats. Every figure the bot shows is checked
against a count made here from content/data/*.yaml and the generated data, not with the product's code (only
the display name, "Aarhus Kommune", is taken from dialogs.context.official_name). The words around the figures are
the catalogs' (content/locale/*/LC_MESSAGES/messages.po, through tests/wording.py).
"""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from babel.dates import format_timedelta
from babel.lists import format_list

from bot import exports
from bot.app import SERVICES
from bot.config import Config
from bot.store import TinyStore
from content import load_content
from dialogs.context import Ctx, official_name
from dialogs.portfolio import export_csv
from dialogs.store import Actor
from dialogs.turn import Conversation, TurnInput
from tests import portfolio_data as pd
from tests.harness import OTHER_TENANT, TENANT, BotServer, Person, card_of, channel, load_into_postgresql, personal, reply_text
from tests.wording import Rx, fields, rx, status_of, t, tn

KOMBIT_TENANT = "6f1c2b7e-0000-4000-8000-00000000c0b1"
CONSULTANT = Person("aad-kirsten-kombit", "Kirsten Kombit")
CONSULTANT_EN = Person("aad-kirsten-kombit", "Kirsten Kombit", "en-GB")
MUNICIPAL = Person()  # Mette Hansen of Aarhus (harness default), in Aarhus's team channel
MUNICIPAL_EN = Person(locale="en-GB")
STRANGER = Person("aad-ole-other", "Ole Andersen")
PRESS = {"v": 1, "a": "export", "m": "", "p": 1}  # the portfolio card's export button, as in its data
PUBLIC = "https://bot.kombit.example"
pytestmark = pytest.mark.both_stores  # the tests with a bot run on the data dir and on PostgreSQL (tests/conftest.py)

REFUSED = {lang: t(lang, "portfolio.refused") for lang in ("da", "en")}
AARHUS_PHASE = 2  # tests/portfolio_data.py puts Aarhus in Fase 2
LISTED = 40  # municipalities an answer lists before "… og N til"
HEADER = ["kommunekode", "kommune", "bølge", "kommunens fase", "opgave-id", "opgave", "opgavens fase", "tema", "lokal",
          "status", "udført af", "udført (UTC)", "ansvarlig", "udfører"]
MONTHS = {"da": ["januar", "februar", "marts", "april", "maj", "juni", "juli", "august", "september", "oktober",
                 "november", "december"],
          "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                 "November", "December"]}


def _line(lang: str) -> re.Pattern:
    """One municipality of a listing: "- **name** · <portfolio.phase> · <portfolio.overall>[ · <portfolio.next>]
    [ · <portfolio.overdue>]", each part the catalog's template with a named group per figure."""
    phase = rx(lang, "portfolio.phase", number=Rx(r"(?P<phase>\d)"), phase=Rx(r"(?P<phase_name>[^(]+?)"),
               pct=Rx(r"(?P<phase_pct>\d+)"))
    overall = rx(lang, "portfolio.overall", pct=Rx(r"(?P<overall>\d+)"))
    upcoming = rx(lang, "portfolio.next", milestone=Rx(r"(?P<term>.+?)"), date=Rx(r"(?P<date>\d+\.? \w+ \d{4})"),
                  left=Rx(r"(?P<left>[^()]+)"))
    overdue = rx(lang, "portfolio.overdue", count=Rx(r"(?P<overdue>\d+)"))
    return re.compile(rf"^- \*\*(?P<name>.+?)\*\* · {phase} · {overall}(?: · {upcoming})?(?: · {overdue})?$")


LINE = {lang: _line(lang) for lang in ("da", "en")}


# -- the generated portfolio ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def generated():
    return pd.generate()


@pytest.fixture(scope="session")
def wave_content(tmp_path_factory, generated):
    members, _ = generated
    return pd.write_content(tmp_path_factory.mktemp("content") / "content", members)


@pytest.fixture(scope="session")
def rows(generated) -> dict[str, pd.Expected]:
    return {r.code: r for r in generated[1]}


@pytest.fixture(scope="session")
def names() -> dict[str, str]:
    """code -> official name, as the bot shows it ("Aarhus Kommune", "Københavns Kommune")."""
    return _NAMES


@pytest.fixture(scope="session")
def seed_dir(tmp_path_factory, rows) -> Path:
    """The generated data dir as the file store leaves it once opened (state.json split into a file per
    municipality, a snapshot taken): what a test on PostgreSQL copies into its database, without paying for that
    conversion (~1 s) each time."""
    data = tmp_path_factory.mktemp("portfolio") / "data"
    pd.write_store(data, list(rows.values()))
    TinyStore(data).close()
    return data


@pytest.fixture
def start(request, tmp_path, wave_content, rows, store_config):
    """Starts the bot on the 98 generated municipalities: on the data dir tests/portfolio_data.py writes, or on
    PostgreSQL with that data copied into the test's database as `admin migrate` copies it (and verifies)."""
    async def start(**overrides) -> BotServer:
        data = tmp_path / "data"
        if store_config.get("database_url"):
            seed = tmp_path / "seed"
            shutil.copytree(request.getfixturevalue("seed_dir"), seed)
            await load_into_postgresql(seed, store_config["database_url"])
            data.mkdir(exist_ok=True)
        else:
            pd.write_store(data, list(rows.values()))
        overrides.setdefault("consultants", frozenset({CONSULTANT.aad_id}))
        bot = BotServer(data_dir=data, content_root=wave_content, config_overrides={**overrides, **store_config})
        await bot.start()
        return bot
    return start


@pytest.fixture
async def kombit(start):
    bot = await start(public_url=PUBLIC)
    yield bot
    await bot.close()


def consultant_chat(n: int = 1):
    return personal(100 + n, tenant=KOMBIT_TENANT)




async def ask(server: BotServer, text: str, where, person: Person) -> dict:
    return await server.exchange(server.message(text, where, person))


async def press(server: BotServer, where, person: Person) -> dict:
    return await server.exchange(server.activity(where, person, value=dict(PRESS), replyToId="reply-1"))


def day(lang: str, value: date) -> str:
    month = MONTHS[lang][value.month - 1]
    return f"{value.day}. {month} {value.year}" if lang == "da" else f"{value.day} {month} {value.year}"


def phase_name(number: int, lang: str) -> str:
    return pd.PHASES[number - 1]["name"][lang]


def wave_name(wave_id: str, lang: str) -> str:
    return next(w[1] if lang == "da" else w[2] for w in pd.WAVES if w[0] == wave_id)


def until(lang: str, when: date) -> str:
    """The time left to a date as a reply spells it: the catalog's today/tomorrow, else Babel's "om 3 måneder"."""
    days = (when - pd.TODAY).days
    if days in (0, 1):
        return t(lang, "word.today" if days == 0 else "word.tomorrow")
    return format_timedelta(timedelta(days=days), add_direction=True, threshold=1.5, granularity="day", locale=lang)


def status_header(lang: str, code: str, phase: int) -> str:
    return t(lang, "status.header", name=_NAMES[code], number=phase, phase=phase_name(phase, lang))


def aarhus_status(lang: str) -> str:
    return status_header(lang, "0751", AARHUS_PHASE)


def more(lang: str, shown: int) -> str:
    """The line under a listing cut at LISTED: "… og 58 til – skriv «eksport» for alle."."""
    return tn(lang, "portfolio.more", shown - LISTED)


def deadlines_note(lang: str) -> str:
    """The italic note under a listing on what "forsinket" counts: our draft deadlines, or the project's own."""
    drafted = any(task.due and (task.details_source is None or task.details_source.kind == "draft")
                  for task in _CONTENT.tasks)
    key = "portfolio.deadlines.draft" if drafted else "portfolio.deadlines.project"
    return f"_{t(lang, key, project=_CONTENT.project.name.get(lang))}_"


def listed(text: str, lang: str) -> list[dict]:
    """The municipality lines of a consultant answer, parsed."""
    out = []
    for line in text.splitlines():
        if line.startswith("- **"):
            match = LINE[lang].match(line)
            assert match, f"line not in the expected shape: {line!r}"
            out.append({**fields(match), "line": line})
    return out


def check_line(parsed: dict, row: pd.Expected, names: dict[str, str], lang: str) -> None:
    """One listed municipality against the independent count."""
    assert parsed["name"] == names[row.code]
    got = (int(parsed["phase"]), parsed["phase_name"], int(parsed["phase_pct"]), int(parsed["overall"]),
           int(parsed.get("overdue") or 0))
    assert got == (row.phase, phase_name(row.phase, lang), row.phase_pct, row.overall_pct, row.overdue), row.code
    if row.next_milestone is None:
        assert parsed.get("term") is None, row.code
    else:
        term, when = row.next_milestone
        assert (parsed["term"], parsed["date"], parsed["left"]) == \
            (_CONTENT.term(term).term.get(lang), day(lang, when), until(lang, when)), row.code
    if row.overdue:  # worded in the plural form the catalog picks for the count
        assert parsed["line"].endswith(" · " + tn(lang, "portfolio.overdue", row.overdue)), parsed["line"]


def behind_order(rows) -> list[pd.Expected]:
    """Most overdue first; among equals the least done, then by name."""
    return sorted(rows, key=lambda r: (-r.overdue, r.overall_pct, official_name_of(r)))


def official_name_of(row: pd.Expected) -> str:
    return _NAMES[row.code]


_CONTENT = load_content()
_NAMES = {m.code: official_name(m) for m in _CONTENT.municipalities}


def leaked_names(payload: str, own: str | None) -> list[str]:
    """Other municipalities' names (plain and official) in a reply, as whole words."""
    found = []
    for code, plain in pd.municipalities().items():
        if code == own:
            continue
        for name in {plain, _NAMES[code]}:
            if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", payload):
                found.append(name)
    return found


# -- who may see it -------------------------------------------------------------------------------
COMMANDS = [
    ("oversigt", "da"),
    ("oversigt sorteret efter mest bagud", "da"),
    ("portfolio by next go-live", "en"),
    ("hvem halter i bølge 2?", "da"),
    ("hvilke kommuner er i Forberedelse?", "da"),
    ("status for Aarhus", "da"),
    ("eksport", "da"),
    (PRESS, "da"),
]


LISTING = ("oversigt", "oversigt sorteret efter mest bagud", "portfolio by next go-live", "hvem halter i bølge 2?",
           "hvilke kommuner er i Forberedelse?")


def consultant_answer_ok(command, lang: str, activity: dict, rows: dict[str, pd.Expected]) -> None:
    text = reply_text(activity)
    wave2 = [r for r in rows.values() if r.wave == "boelge-2" and r.overdue]
    in_phase_2 = [r for r in rows.values() if r.phase == 2]
    expected_start = {
        "oversigt": tn("da", "portfolio.header", len(rows)),
        "oversigt sorteret efter mest bagud": tn("da", "portfolio.header", len(rows)),
        "portfolio by next go-live": tn("en", "portfolio.header", len(rows)),
        "hvem halter i bølge 2?": t("da", "portfolio.behind", scope=wave_name("boelge-2", "da"), count=len(wave2)),
        "hvilke kommuner er i Forberedelse?": t("da", "portfolio.in_phase", number=2, phase=phase_name(2, "da"),
                                                 count=len(in_phase_2)),
        "status for Aarhus": aarhus_status("da"),
    }
    if isinstance(command, str) and command in expected_start:
        assert text.startswith(expected_start[command]), (command, text[:300])
    else:  # the export, typed or pressed: a download link
        assert text.startswith(tn("da", "portfolio.export", len(rows))), (command, text[:300])
        assert re.search(r"\[implementering-2026-11-27\.csv\]\(https://bot\.kombit\.example/exports/[\w-]{20,}\)", text)
    assert not text.startswith(REFUSED[lang])


def refusal_ok(command, lang: str, activity: dict, own: str | None) -> None:
    text = reply_text(activity)
    payload = json.dumps(activity, ensure_ascii=False)
    if own is None:
        assert text == REFUSED[lang], (command, text)
        assert card_of(activity) is None
    else:
        assert text.startswith(REFUSED[lang] + "\n\n" + aarhus_status(lang)), (command, text[:300])
        assert activity.get("text") == REFUSED[lang]  # the note next to their own status card
        card = card_of(activity)
        assert card and card["fallbackText"] == text
    assert "/exports/" not in payload and "Action.OpenUrl" not in payload
    assert leaked_names(payload, own) == [], (command, leaked_names(payload, own))


async def _run_all(bot: BotServer, rows, consultant_en: Person, consultant_da: Person) -> None:
    for command, lang in COMMANDS:
        consultant = consultant_en if lang == "en" else consultant_da
        municipal = MUNICIPAL_EN if lang == "en" else MUNICIPAL
        stranger = Person(STRANGER.aad_id, STRANGER.name, "en-GB" if lang == "en" else "da-DK")
        if command is PRESS:  # a press in a channel is not addressed to the bot (see test_cards); personal chats
            answer = await press(bot, consultant_chat(), consultant)
            own = await press(bot, personal(7, tenant=TENANT), municipal)  # the tenant's only municipality
            other = await press(bot, personal(8, tenant=OTHER_TENANT), stranger)
        else:
            answer = await ask(bot, command, consultant_chat(), consultant)
            own = await ask(bot, command, channel(), municipal)
            other = await ask(bot, command, personal(8, tenant=OTHER_TENANT), stranger)
        consultant_answer_ok(command, lang, answer, rows)
        if command in LISTING:  # the leak check below does see names where there are some
            assert len(leaked_names(json.dumps(answer, ensure_ascii=False), "0751")) >= 20
        refusal_ok(command, lang, own, "0751")
        refusal_ok(command, lang, other, None)


async def test_every_consultant_command_is_for_listed_consultants_only(start, rows):
    bot = await start(public_url=PUBLIC)
    try:
        await _run_all(bot, rows, CONSULTANT_EN, CONSULTANT)
        # Inside a municipality's team the consultant is told to ask in a personal chat: the team's members
        # must not see the other municipalities' progress and names.
        inside = await ask(bot, "oversigt", channel(), CONSULTANT)
        assert reply_text(inside) == t("da", "portfolio.personal_only")
        assert leaked_names(json.dumps(inside, ensure_ascii=False), "") == []
        # Another municipality asking about Aarhus gets its own status (Tårnby), and nothing of Aarhus.
        taarnby = channel(team="19:team-0185@thread.tacv2", channel_id="19:general-0185@thread.tacv2",
                          tenant="tenant-0185")
        for typed in ("status for Aarhus", "hvordan går det med Aarhus?"):
            reply = await ask(bot, typed, taarnby, Person("aad-0185-user", "Bo Tårnby"))
            text = reply_text(reply)
            row = rows["0185"]
            assert text.startswith(f"{REFUSED['da']}\n\n{status_header('da', '0185', row.phase)}"), text[:200]
            assert leaked_names(json.dumps(reply, ensure_ascii=False), "0185") == []
            assert "Aarhus" not in json.dumps(reply, ensure_ascii=False)
        # Refusals wrote nothing: the audit trail is what was generated.
        assert not [e for e in await bot.events() if e["at"] >= "2026-11-27"]
    finally:
        await bot.close()


async def test_consultants_from_the_data_dirs_consultants_txt(start, tmp_path, rows):
    """Config.from_env reads <BOT_DATA_DIR>/consultants.txt (comments, case) on top of BOT_CONSULTANTS."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "consultants.txt").write_text(
        "# KOMBIT's implementeringskonsulenter, én AAD object id pr. linje\n"
        "\n"
        "  AAD-Kirsten-KOMBIT   # Kirsten, skrevet med store bogstaver\n"
        "# aad-former-consultant\n", encoding="utf-8")
    config = Config.from_env({"BOT_DATA_DIR": str(data), "BOT_CONSULTANTS": " aad-jonas-kombit ,"})
    assert config.consultants == frozenset({"aad-kirsten-kombit", "aad-jonas-kombit"})
    bot = await start(public_url=PUBLIC, consultants=config.consultants)
    try:
        jonas = Person("aad-jonas-kombit", "Jonas Kombit")
        await _run_all(bot, rows, Person("AAD-KIRSTEN-KOMBIT", "Kirsten Kombit", "en-GB"), jonas)
        former = await ask(bot, "oversigt", consultant_chat(2), Person("aad-former-consultant", "Tidligere Konsulent"))
        refusal_ok("oversigt", "da", former, None)
    finally:
        await bot.close()


# -- the numbers ----------------------------------------------------------------------------------
def chart_expectation(rows: list[pd.Expected], lang: str) -> list[tuple[str, str, int, int]]:
    """(label, caption, bar length in the text twin, share of the card's width) per phase, then per wave."""
    counts = Counter(r.phase for r in rows)
    most = max(counts.values())
    out = [(f"{n} {phase_name(n, lang)}", str(counts[n]), round(20 * counts[n] / most),
            max(1, round(100 * counts[n] / most)) if counts[n] else 0) for n in range(1, 5)]
    for wave_id, da, en, *_ in pd.WAVES:
        members = [r for r in rows if r.wave == wave_id]
        pct = round(sum(r.overall_pct for r in members) / len(members))
        out.append((da if lang == "da" else en, f"{pct} %", round(pct / 5), max(1, pct) if pct else 0))
    return out


def card_bars(card: dict) -> list[tuple[str, str, int]]:
    bars = []
    for node in card["body"]:
        if node.get("type") == "ColumnSet":
            columns = node["columns"]
            accent = [c for c in columns if c.get("style") == "accent"]
            bars.append((columns[0]["items"][0]["text"], columns[-1]["items"][0]["text"],
                         int(accent[0]["width"]) if accent else 0))
    return bars


async def test_overview_chart_and_rows_match_an_independent_count(kombit, rows, names):
    activity = await ask(kombit, "oversigt", consultant_chat(), CONSULTANT)
    card = card_of(activity)
    text = card["fallbackText"]
    header = tn("da", "portfolio.header", len(rows))
    assert text.startswith(header + "\n\n")
    expected = chart_expectation(list(rows.values()), "da")
    # The card: one bar per phase and one per wave, each captioned with its number.
    assert card_bars(card) == [(label, caption, share) for label, caption, _, share in expected]
    headings = [n["text"] for n in card["body"] if n.get("type") == "TextBlock" and n.get("weight") == "Bolder"]
    assert headings == [header, t("da", "portfolio.chart.phases"), t("da", "portfolio.chart.waves")]
    # The text twin: the same numbers, drawn with blocks.
    for label, caption, length, _ in expected:
        pattern = rf"^`{re.escape(label)} *` {'█' * length} {re.escape(caption)}$"
        assert re.search(pattern, text, re.M), (label, caption, length)
    assert sum(int(c) for _, c, _, _ in expected[:4]) == 98
    # The list: 40 by name, each line's figures right, then a pointer to the export.
    lines = listed(text, "da")
    by_name = sorted(rows.values(), key=official_name_of)
    assert [p["name"] for p in lines] == [names[r.code] for r in by_name[:LISTED]]
    for parsed, row in zip(lines, by_name, strict=False):
        check_line(parsed, row, names, "da")
    assert text.endswith("\n\n" + more("da", len(rows)) + "\n\n" + deadlines_note("da"))
    listed_blocks = [n["text"] for n in card["body"] if n.get("type") == "TextBlock" and n["text"].startswith("**")]
    assert [f"- {b}" for b in listed_blocks[1:]] == [line for line in text.splitlines() if line.startswith("- **")]
    assert card["actions"] == [{"type": "Action.Submit", "title": t("da", "card.export"), "data": PRESS}]


async def test_overview_sorted_by_most_behind(kombit, rows, names):
    text = reply_text(await ask(kombit, "oversigt sorteret efter mest bagud", consultant_chat(), CONSULTANT))
    lines = listed(text, "da")
    expected = behind_order(rows.values())[:LISTED]
    assert [p["name"] for p in lines] == [names[r.code] for r in expected]
    overdue = [int(p["overdue"] or 0) for p in lines]
    assert overdue == sorted(overdue, reverse=True) and overdue[0] == max(r.overdue for r in rows.values())
    for parsed, row in zip(lines, expected, strict=True):
        check_line(parsed, row, names, "da")


async def test_overview_in_english(kombit, rows, names):
    activity = await ask(kombit, "portfolio by next go-live", consultant_chat(), CONSULTANT_EN)
    card = card_of(activity)
    text = card["fallbackText"]
    assert text.startswith(tn("en", "portfolio.header", len(rows)) + "\n\n")
    expected = chart_expectation(list(rows.values()), "en")
    assert card_bars(card) == [(label, caption, share) for label, caption, _, share in expected]
    lines = listed(text, "en")
    assert len(lines) == LISTED and text.endswith("\n\n" + more("en", len(rows)) + "\n\n" + deadlines_note("en"))
    by_name = {names[r.code]: r for r in rows.values()}
    for parsed in lines:
        check_line(parsed, by_name[parsed["name"]], names, "en")
    assert card["actions"][0]["title"] == t("en", "card.export") and card["actions"][0]["data"] == PRESS


async def test_overview_by_next_golive_puts_the_soonest_golive_first(kombit, rows, names):
    text = reply_text(await ask(kombit, "portfolio by next go-live", consultant_chat(), CONSULTANT_EN))
    far = date.max

    def key(r: pd.Expected):
        golive = r.milestones.get("go-live")
        return (golive if golive and golive >= pd.TODAY else far, official_name_of(r))
    expected = sorted(rows.values(), key=key)[:LISTED]
    assert [p["name"] for p in listed(text, "en")] == [names[r.code] for r in expected]


async def test_who_is_lagging_in_wave_2_lists_exactly_those_with_overdue_tasks(kombit, rows, names):
    text = reply_text(await ask(kombit, "hvem halter i bølge 2?", consultant_chat(), CONSULTANT))
    wave2 = [r for r in rows.values() if r.wave == "boelge-2"]
    behind = behind_order([r for r in wave2 if r.overdue > 0])
    assert 0 < len(behind) < len(wave2) <= LISTED  # some of the wave are on time: the filter matters
    assert text.startswith(t("da", "portfolio.behind", scope=wave_name("boelge-2", "da"), count=len(behind)) + "\n\n")
    lines = listed(text, "da")
    assert [p["name"] for p in lines] == [names[r.code] for r in behind]
    for parsed, row in zip(lines, behind, strict=True):
        check_line(parsed, row, names, "da")
    others = {names[r.code] for r in rows.values() if r not in behind}
    assert not [name for name in others if f"**{name}**" in text]
    # Across all waves: the count is everyone behind; the list shows the 40 most behind.
    everyone = behind_order([r for r in rows.values() if r.overdue])
    text = reply_text(await ask(kombit, "hvem halter?", consultant_chat(), CONSULTANT))
    assert text.startswith(t("da", "portfolio.behind", scope=t("da", "portfolio.all"), count=len(everyone)))
    assert [p["name"] for p in listed(text, "da")] == [names[r.code] for r in everyone[:LISTED]]
    # English, and a wave that does not exist.
    text = reply_text(await ask(kombit, "who is behind in wave 3?", consultant_chat(), CONSULTANT_EN))
    wave3 = behind_order([r for r in rows.values() if r.wave == "boelge-3" and r.overdue])
    assert text.startswith(t("en", "portfolio.behind", scope=wave_name("boelge-3", "en"), count=len(wave3)))
    assert [p["name"] for p in listed(text, "en")] == [names[r.code] for r in wave3]
    text = reply_text(await ask(kombit, "hvem halter i bølge 7?", consultant_chat(), CONSULTANT))
    waves = format_list([f"«{w[1]}»" for w in pd.WAVES], style="or", locale="da")
    assert text == t("da", "portfolio.no_wave", text="bølge 7", options=waves)


async def test_which_municipalities_are_in_a_phase(kombit, rows, names):
    text = reply_text(await ask(kombit, "hvilke kommuner er i Forberedelse?", consultant_chat(), CONSULTANT))
    in_phase = sorted((r for r in rows.values() if r.phase == 2), key=official_name_of)
    assert text.startswith(t("da", "portfolio.in_phase", number=2, phase=phase_name(2, "da"), count=len(in_phase))
                           + "\n\n")
    lines = listed(text, "da")
    assert [p["name"] for p in lines] == [names[r.code] for r in in_phase]
    for parsed, row in zip(lines, in_phase, strict=True):
        check_line(parsed, row, names, "da")
    text = reply_text(await ask(kombit, "which municipalities are in phase 4?", consultant_chat(), CONSULTANT_EN))
    in_4 = sorted((r for r in rows.values() if r.phase == 4), key=official_name_of)
    assert text.startswith(t("en", "portfolio.in_phase", number=4, phase=phase_name(4, "en"), count=len(in_4)))
    assert [p["name"] for p in listed(text, "en")] == [names[r.code] for r in in_4]


@pytest.mark.parametrize("typed, code", [("status for Aarhus", "0751"), ("status for Tårnby", "0185"),
                                         ("hvordan går det med Høje-Taastrup?", "0169")])
async def test_status_for_one_municipality(kombit, rows, names, typed, code):
    text = reply_text(await ask(kombit, typed, consultant_chat(), CONSULTANT))
    row = rows[code]
    assert text.startswith(status_header("da", code, row.phase))
    status = status_of("da", text, names[code])  # each row re-rendered through the catalog
    assert status.current == status.current_row == row.phase
    for number in range(1, 5):
        assert status.phases[number] == (phase_name(number, "da"), *row.counts(number))
    assert status.total == row.counts()
    golive = row.milestones["go-live"]
    assert f"{_CONTENT.term('go-live').term.da}: {day('da', golive)}" in text
    assert await kombit.say("status for Atlantis", consultant_chat(), CONSULTANT) == \
        t("da", "portfolio.unknown_municipality", text="Atlantis")


# -- the CSV export -------------------------------------------------------------------------------
def link_of(activity: dict) -> str:
    card = card_of(activity)
    if card:
        [action] = card["actions"]
        assert action["type"] == "Action.OpenUrl"
        url = action["url"]
        assert f"]({url})" in card["fallbackText"]
        return url
    match = re.search(r"\]\((\S+/exports/[\w-]+)\)", activity["text"])
    assert match, activity["text"]
    return match[1]


async def download(server: BotServer, url: str):
    async with server.session.get(server.url + urlsplit(url).path) as response:
        return response.status, dict(response.headers), await response.read()


def parse_csv(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf"), body[:10]  # UTF-8 BOM: Excel reads æøå right
    return list(csv.reader(io.StringIO(body[3:].decode("utf-8"), newline=""), delimiter=";"))


async def test_export_downloads_a_csv_with_every_municipality_and_task(kombit, rows):
    activity = await ask(kombit, "eksport", consultant_chat(), CONSULTANT)
    assert card_of(activity)["actions"][0]["title"] == t("da", "card.download")
    url = link_of(activity)
    assert url.startswith(f"{PUBLIC}/exports/")
    status, headers, body = await download(kombit, url)
    assert status == 200
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    assert headers["Content-Disposition"] == 'attachment; filename="implementering-2026-11-27.csv"'
    assert headers["Cache-Control"] == "no-store"
    assert b"\r\n" in body
    table = parse_csv(body)
    assert table[0] == HEADER
    data = table[1:]
    assert len(data) == sum(len(r.tasks) for r in rows.values())  # 98 × (KLIK tasks + each one's local tasks)
    assert {len(line) for line in data} == {len(HEADER)}
    waves = {w[0]: w[1] for w in pd.WAVES}
    expected = []
    for row in sorted(rows.values(), key=lambda r: r.code):
        for task_id, phase, theme, title, _, local in row.tasks:
            done = task_id in row.done
            people = row.assignments.get(task_id, {})
            expected.append([row.code, row.name, waves[row.wave], str(row.phase), task_id, title, str(phase),
                             pd.THEME_NAMES[theme]["da"], "ja" if local else "nej", "udført" if done else "åben",
                             row.done[task_id] if done else "", row.done_at[task_id] if done else "",
                             people.get("responsible", ""), people.get("performer", "")])
    assert data == expected
    # Spot checks, readable: æøå intact, KLIK and local tasks, who did what, ansvarlig/udfører.
    by_key = {(line[0], line[4]): line for line in data}
    assert {line[1] for line in data if line[0] in ("0169", "0185", "0101")} == {"Høje-Taastrup", "Tårnby", "København"}
    assert by_key[("0185", "udpeg-projektejer")][2] == "Bølge 3"
    aarhus = [line for line in data if line[0] == "0751"]
    assert len(aarhus) == len(rows["0751"].tasks) and aarhus[0][4] == pd.KLIK[0].id
    assert [line[8] for line in aarhus].count("ja") == sum(t[5] for t in rows["0751"].tasks)
    assert all("Informér MED-udvalget i Aarhus" in line[5] for line in aarhus if line[8] == "ja")
    assigned = next(r for r in rows.values() if r.assignments)
    (task_id, roles), = list(assigned.assignments.items())[:1]
    assert by_key[(assigned.code, task_id)][12] == roles["responsible"]
    done = next((r.code, t) for r in rows.values() for t in r.done)
    assert by_key[done][9:11] == ["udført", rows[done[0]].done[done[1]]]


async def test_a_consultant_id_counts_only_when_teams_sends_it(kombit, rows):
    """On Web Chat, Direct Line or any other channel the client writes from.aadObjectId itself: no rights."""
    activity = kombit.message("export", consultant_chat(), CONSULTANT_EN)
    activity["channelId"] = "slack"
    reply = await kombit.exchange(activity)
    assert reply["text"].startswith(REFUSED["en"])
    assert "/exports/" not in json.dumps(reply)


async def test_unknown_and_expired_export_links_are_404(kombit, monkeypatch):
    status, _, body = await download(kombit, f"{PUBLIC}/exports/{'x' * 32}")
    assert status == 404 and json.loads(body) == {"error": "this export link has expired or never existed"}
    monkeypatch.setattr(exports, "TTL_SECONDS", -1)  # every new export is already past its lifetime
    url = link_of(await ask(kombit, "eksport", consultant_chat(), CONSULTANT))
    status, _, body = await download(kombit, url)
    assert status == 404 and b"expired" in body


async def test_export_of_98_municipalities_with_about_40_tasks_each_is_fast(kombit, rows):
    assert sum(len(r.tasks) for r in rows.values()) / len(rows) >= 39  # ~98 × 40 rows, local tasks included
    await ask(kombit, "oversigt", consultant_chat(), CONSULTANT)  # warm: the first turn loads locale data
    started = time.perf_counter()
    activity = await ask(kombit, "eksport", consultant_chat(), CONSULTANT)
    turn = time.perf_counter() - started
    status, _, body = await download(kombit, link_of(activity))
    assert status == 200 and len(parse_csv(body)) == 1 + sum(len(r.tasks) for r in rows.values())
    assert turn < 1.0, f"the export turn took {turn:.2f} s"
    # And the CSV alone, from the store's states.
    services = kombit.runner.app[SERVICES]
    states = await services.store.all_municipalities()
    turn_input = TurnInput("eksport", Actor(CONSULTANT.aad_id, CONSULTANT.name),
                           Conversation("a:x", "conversation:a:x", "personal", KOMBIT_TENANT),
                           datetime(2026, 11, 27, 9, 30, tzinfo=UTC))
    started = time.perf_counter()
    data = export_csv(Ctx(services, turn_input, "da", consultant=True), states)
    assert time.perf_counter() - started < 1.0
    assert data == body
