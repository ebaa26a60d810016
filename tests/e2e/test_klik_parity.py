"""KLIK parity end to end, over HTTP, in Danish and English: ansvarlig/udfører (with Teams @mentions) and
"mine opgaver", a municipality's own local tasks through their whole life, and task details with the deadline.

Expected wording is the catalog's (content/locale/*/LC_MESSAGES/messages.po, through tests/wording.py) and the
model's own text (content/data/*.yaml, read here with yaml), not the product's loader.
"""
from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from babel.lists import format_list

from tests.harness import OTHER_TENANT, BotServer, Person, Where, card_of, channel, group_chat, personal, reply_text
from tests.wording import counted, progress, rx, status_of, t

pytestmark = pytest.mark.both_stores  # every test on the data dir and on PostgreSQL (tests/conftest.py)
ROOT = Path(__file__).parents[2] / "content"
TASKS_FILE = yaml.safe_load((ROOT / "data" / "tasks.yaml").read_text(encoding="utf-8"))
TASKS = {t["id"]: t for t in TASKS_FILE["tasks"]}
THEMES = yaml.safe_load((ROOT / "data" / "themes.yaml").read_text(encoding="utf-8"))["themes"]
PHASES = {p["number"]: p for p in yaml.safe_load((ROOT / "data" / "phases.yaml").read_text(encoding="utf-8"))["phases"]}
THEME = {theme["id"]: theme["name"] for theme in THEMES}
KLIK_COUNT = len(TASKS)
PHASE_COUNT = {n: sum(t["phase"] == n for t in TASKS.values()) for n in range(1, 5)}
MONTHS = {"da": ["januar", "februar", "marts", "april", "maj", "juni", "juli", "august", "september", "oktober",
                 "november", "december"],
          "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                 "November", "December"]}


WHEN = {"da": "27. nov. 2026 kl. 10.30", "en": "27 Nov 2026, 10:30"}  # the harness clock in Copenhagen
SUPER_USERS = TASKS["udpeg-superbrugere"]["title"]  # {da, en}
TRAINING = TASKS["planlaeg-uddannelse"]["title"]


def phase_name(number: int, lang: str = "da") -> str:
    return PHASES[number]["name"][lang]


def either(lang: str, items: list[str]) -> str:
    """«a», «b» eller «c» / «a», «b», or «c»: how a question lists its options (CLDR's "or" list)."""
    return format_list([f"«{item}»" for item in items], style="or", locale=lang)


def mine(lang: str, mark: str, task_id: str, role: str) -> str:
    """One line of "mine opgaver": "- ⬜ Udpeg superbrugere (udfører, fase 2)"."""
    task = TASKS[task_id]
    return f"- {mark} {task['title'][lang]} ({t(lang, f'assign.role.{role}')}, {t(lang, 'word.phase')} {task['phase']})"


def assigned(lang: str, **people: str) -> str:
    """Who is on a task, as its details show it: "ansvarlig: Mette · udfører: Lars Nielsen"."""
    return " · ".join(f"{t(lang, f'assign.role.{role}')}: {name}" for role, name in people.items())


def history_line(lang: str, action: str, task: str, who: str = "Mette Hansen") -> str:
    return t(lang, f"history.{action}", when=WHEN[lang], who=who, task=task)


def unknown_task(text: str, lang: str = "da") -> str:
    """A regex for "no task is called that", with or without suggestions."""
    return f"{rx(lang, 'task.unknown', text=text)}|{rx(lang, 'task.unknown.suggest', text=text)}"


def day(lang: str, value: date) -> str:
    month = MONTHS[lang][value.month - 1]
    return f"{value.day}. {month} {value.year}" if lang == "da" else f"{value.day} {month} {value.year}"


AARHUS = channel()  # TENANT's team "aarhus"
ODENSE = channel(team="19:team-odense@thread.tacv2", channel_id="19:odense-general@thread.tacv2", tenant=OTHER_TENANT)
METTE = Person()  # Mette Hansen, aad-mette
LARS = Person("aad-lars", "Lars Nielsen")
LARS_EN = Person("aad-lars", "Lars Nielsen", "en-GB")
EMMA = Person("aad-emma", "Emma Smith", "en-GB")
LARS_MENTION = {"type": "mention", "text": "<at>Lars Nielsen</at>", "mentioned": {"id": "29:aad-lars", "name": "Lars Nielsen"}}




async def mention_lars(server: BotServer, text: str, where: Where, person: Person = METTE) -> str:
    """A Teams message with Lars @mentioned in it (and the bot too, outside personal chats)."""
    activity = server.message(text, where, person)
    activity["entities"] = [*activity.get("entities", []), LARS_MENTION]
    return reply_text(await server.exchange(activity))




def status_rows(text: str, lang: str = "da") -> tuple[dict[int, tuple[int, int]], tuple[int, int]]:
    """({phase: (done, total)}, (done, total) overall), read through the catalog's status templates."""
    status = status_of(lang, text)
    return {number: (done, total) for number, (_, done, total) in status.phases.items()}, status.total


@pytest.fixture
async def aarhus(server):
    assert "Aarhus Kommune" in await server.say("tilmeld Aarhus", AARHUS)
    return server


# -- ansvarlig / udfører ----------------------------------------------------------------------------
async def test_performer_by_mention_and_responsible_by_name_then_mine_opgaver(aarhus):
    server = aarhus
    reply = await mention_lars(server, f"tildel {SUPER_USERS['da']} til <at>Lars Nielsen</at>", AARHUS)
    assert reply == t("da", "assign.done.performer", person="Lars Nielsen", task=SUPER_USERS["da"])
    reply = await server.say(f"sæt Mette som ansvarlig for {TRAINING['da']}", AARHUS)
    assert reply == t("da", "assign.done.responsible", person="Mette", task=TRAINING["da"])

    header = t("da", "assign.mine.header")
    lars_list = f"{header}\n\n{mine('da', '⬜', 'udpeg-superbrugere', 'performer')}"
    assert await server.say("mine opgaver", AARHUS, LARS) == lars_list
    assert await server.say("mine opgaver", personal(2), LARS) == lars_list  # his personal chat: same tenant
    mette = Person("aad-mette-s", "Mette")  # found by name: "Mette" was typed, not mentioned
    assert await server.say("mine opgaver", AARHUS, mette) == \
        f"{header}\n\n{mine('da', '⬜', 'planlaeg-uddannelse', 'responsible')}"
    namesake = Person("aad-lars-2", "Lars Nielsen")  # same name, another person: a mention is by id
    assert await server.say("mine opgaver", AARHUS, namesake) == t("da", "assign.mine.none")
    assert await server.say("mine opgaver", AARHUS, Person("aad-jens", "Jens Jensen")) == t("da", "assign.mine.none")

    # Both roles on one task; details show them.
    await mention_lars(server, f"tildel {TRAINING['da']} til <at>Lars Nielsen</at>", AARHUS)
    details = await server.say(f"vis {TRAINING['da']}", AARHUS)
    both = assigned("da", responsible="Mette", performer="Lars Nielsen")
    assert f"\n\n{both}\n\n" in details
    assert f"\n\n{assigned('da', performer='Lars Nielsen')}\n\n" in await server.say(f"vis {SUPER_USERS['da']}", AARHUS)
    await server.say(f"marker {SUPER_USERS['da']} som udført", AARHUS)
    lars_list = "\n".join([f"{header}\n", mine("da", "✅", "udpeg-superbrugere", "performer"),
                           mine("da", "⬜", "planlaeg-uddannelse", "performer")])
    assert await server.say("mine opgaver", AARHUS, LARS) == lars_list

    # Audited, with who was made what; the task's history says so.
    assigned_events = [(e["task_id"], e["details"]["role"], e["details"]["person"], e["by"]["id"])
                       for e in await server.events() if e["action"] == "assign"]
    assert assigned_events == [
        ("udpeg-superbrugere", "performer", {"id": "29:aad-lars", "name": "Lars Nielsen"}, "aad-mette"),
        ("planlaeg-uddannelse", "responsible", {"id": "", "name": "Mette"}, "aad-mette"),
        ("planlaeg-uddannelse", "performer", {"id": "29:aad-lars", "name": "Lars Nielsen"}, "aad-mette")]
    history = await server.say(f"historik for {TRAINING['da']}", AARHUS)
    assert history.count(history_line("da", "assign", TRAINING["da"])) == 2

    # Everything survives a restart.
    await server.restart()
    assert await server.say("mine opgaver", AARHUS, LARS) == lars_list
    assert both in await server.say(f"vis {TRAINING['da']}", AARHUS)
    # Another municipality does not see Aarhus's assignments.
    await server.say("tilmeld Odense", ODENSE)
    assert await server.say("mine opgaver", ODENSE, Person("aad-lars", "Lars Nielsen")) == t("da", "assign.mine.none")
    assert t("da", "assign.role.performer") not in await server.say(f"vis {TRAINING['da']}", ODENSE)


async def test_assign_in_english_in_a_group_chat(server):
    chat = group_chat(4, tenant=OTHER_TENANT)
    await server.say("register Odense", chat, EMMA)
    reply = await mention_lars(server, f"assign {SUPER_USERS['en']} to <at>Lars Nielsen</at>", chat, EMMA)
    assert reply == t("en", "assign.done.performer", person="Lars Nielsen", task=SUPER_USERS["en"])
    reply = await server.say(f"make Mette responsible for {TRAINING['en']}", chat, EMMA)
    assert reply == t("en", "assign.done.responsible", person="Mette", task=TRAINING["en"])
    header = t("en", "assign.mine.header")
    assert await server.say("my tasks", chat, LARS_EN) == \
        f"{header}\n\n{mine('en', '⬜', 'udpeg-superbrugere', 'performer')}"
    assert await server.say("my tasks", chat, Person("aad-mette-s", "Mette", "en-GB")) == \
        f"{header}\n\n{mine('en', '⬜', 'planlaeg-uddannelse', 'responsible')}"
    assert await server.say("my tasks", chat, EMMA) == t("en", "assign.mine.none")
    assert f"\n\n{assigned('en', responsible='Mette')}\n\n" in await server.say(f"show {TRAINING['en']}", chat, EMMA)
    assert f"\n\n{assigned('en', performer='Lars Nielsen')}\n\n" in \
        await server.say(f"show {SUPER_USERS['en']}", chat, EMMA)
    assert await server.say(f"assign {TRAINING['en']}", chat, EMMA) != ""  # half a command: a helpful answer, no crash
    assert [e["action"] for e in await server.events()].count("assign") == 2


async def test_assigning_oneself_with_mig_as_the_product_suggests(aarhus):
    reply = await aarhus.say(f"sæt mig som ansvarlig for {TRAINING['da']}", AARHUS)
    assert not reply.startswith("mig "), reply
    assert mine("da", "⬜", "planlaeg-uddannelse", "responsible") in (await aarhus.say("mine opgaver", AARHUS)).splitlines()


# -- local tasks ------------------------------------------------------------------------------------
LOCAL = "Informér MED-udvalget"
ORGANISING = THEME["organisering"]  # {da, en}: the theme the local task is added under, in phase 2
ADD = f"tilføj lokal opgave '{LOCAL}' i {phase_name(2)} under {ORGANISING['da']}"


def buttons(card: dict) -> list[tuple[str, dict]]:
    """(row text, Action.Submit data) for every task row of a next-tasks card."""
    out = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "ColumnSet" and len(node.get("columns", [])) == 2:
                label = node["columns"][0]["items"][0].get("text")
                actions = node["columns"][1]["items"][0].get("actions") or [{}]
                out.append((label, actions[0].get("data")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(card)
    return out


async def test_a_local_task_through_its_whole_life(aarhus):
    server = aarhus
    rows, total = status_rows(await server.say("status", AARHUS))
    assert rows[2] == (0, PHASE_COUNT[2]) and total == (0, KLIK_COUNT)

    # Added step by step: the bot asks for what is missing.
    phases = either("da", [f"{n} {phase_name(n)}" for n in sorted(PHASES)])
    assert await server.say(f"tilføj lokal opgave {LOCAL}", AARHUS) == \
        t("da", "local.which_phase", title=LOCAL, options=phases)
    themes = either("da", [theme["name"]["da"] for theme in THEMES])
    assert await server.say(f"tilføj lokal opgave {LOCAL} i {phase_name(2)}", AARHUS) == \
        t("da", "local.which_theme", title=LOCAL, options=themes)
    assert await server.say(ADD, AARHUS) == t("da", "local.added", title=LOCAL, number=2, phase=phase_name(2),
                                              theme=ORGANISING["da"])
    assert await server.say(ADD, AARHUS) == t("da", "local.exists", title=LOCAL)
    [added] = [e for e in await server.events() if e["action"] == "local_add"]
    local_id = added["task_id"]
    assert added["details"]["task"] == {"id": local_id, "phase": 2, "theme": "organisering", "title": LOCAL}

    # Listed in its phase (not in phase 1's list), numbered, with a Done button on the card.
    assert LOCAL not in await server.say("hvad skal vi nu?", AARHUS)
    before = len(server.connector.sent)
    text = await server.say(f"hvad skal vi nu i {phase_name(2)}?", AARHUS)
    card = card_of(server.connector.sent[before])
    assert text.splitlines()[0] == t("da", "next.header", number=2, phase=phase_name(2), done=0,
                                     total=PHASE_COUNT[2] + 1)
    block = re.search(rf"\*\*{re.escape(ORGANISING['da'])}\*\*\n((?:\d+\. .+\n?)+)", text)[1].splitlines()
    number = int(block[-1].split(".")[0])
    assert block[-1] == f"{number}. {LOCAL}"
    assert (f"{number}. {LOCAL}", {"v": 1, "a": "done", "m": "0751", "task": local_id, "p": 2}) in buttons(card)
    rows, total = status_rows(await server.say("status", AARHUS))
    assert rows[2] == (0, PHASE_COUNT[2] + 1) and total == (0, KLIK_COUNT + 1)

    # Marked by number, undone by name, pressed on the card, undone by number, marked by name.
    def phase_2(done: int) -> str:
        return t("da", "mark.progress", number=2, phase=phase_name(2), progress=progress("da", done, PHASE_COUNT[2] + 1))

    done_text = t("da", "mark.done", task=LOCAL, who="Mette Hansen")
    assert await server.say(f"udført {number}", AARHUS) == f"{done_text}\n\n{phase_2(1)}"
    undone = t("da", "reopen.done", task=LOCAL, who="Mette Hansen")
    assert await server.say(f"fortryd {LOCAL}", AARHUS) == f"{undone}\n\n{phase_2(0)}"
    data = dict(buttons(card))[f"{number}. {LOCAL}"]
    pressed = await server.exchange(server.activity(personal(1), METTE, value=data, replyToId="reply-card"))
    assert pressed["text"] == done_text  # personal chat: TENANT's only municipality is Aarhus
    [redrawn] = server.connector.updated
    assert redrawn["_path"].endswith("/activities/reply-card") and LOCAL not in json.dumps(redrawn, ensure_ascii=False)
    assert await server.say(f"fortryd {number}", AARHUS) == f"{undone}\n\n{phase_2(0)}"
    assert await server.say(f"marker {LOCAL} som udført", AARHUS) == f"{done_text}\n\n{phase_2(1)}"
    rows, total = status_rows(await server.say("status", AARHUS))
    assert rows[2] == (1, PHASE_COUNT[2] + 1) and total == (1, KLIK_COUNT + 1)

    # History names it; details say it is local.
    history = await server.say("historik", AARHUS)
    assert history_line("da", "local_add", LOCAL) in history
    assert history.count(history_line("da", "done", LOCAL)) == 3
    assert history.count(history_line("da", "reopen", LOCAL)) == 2
    details = await server.say(f"vis {LOCAL}", AARHUS)
    assert details.startswith(f"**{LOCAL}**\n\n" + t("da", "details.kind.local", number=2, phase=phase_name(2),
                                                     theme=ORGANISING["da"]))
    assert t("da", "details.done", who="Mette Hansen", when=WHEN["da"]) in details
    assert not any(f"**{t('da', key)}:**" in details for key in ("details.deadline", "details.deadline.draft"))

    # It survives a restart.
    await server.restart()
    assert status_rows(await server.say("status", AARHUS))[1] == (1, KLIK_COUNT + 1)

    # Another municipality has no such task and cannot touch Aarhus's.
    await server.say("tilmeld Odense", ODENSE)
    assert LOCAL not in await server.say(f"hvad skal vi nu i {phase_name(2)}?", ODENSE)
    assert status_rows(await server.say("status", ODENSE))[1] == (0, KLIK_COUNT)
    for text in (f"vis {LOCAL}", f"udført {LOCAL}", f"fjern lokal opgave {LOCAL}"):
        reply = await server.say(text, ODENSE)
        assert re.fullmatch(unknown_task(LOCAL), reply), (text, reply)
    assert status_rows(await server.say("status", AARHUS))[1] == (1, KLIK_COUNT + 1)

    # A KLIK task cannot be removed; the local one can, and the counts are back.
    assert await server.say(f"fjern lokal opgave {TRAINING['da']}", AARHUS) == \
        t("da", "local.not_local", title=TRAINING["da"])
    assert await server.say(f"fjern lokal opgave {LOCAL}", AARHUS) == t("da", "local.removed", title=LOCAL)
    rows, total = status_rows(await server.say("status", AARHUS))
    assert rows[2] == (0, PHASE_COUNT[2]) and total == (0, KLIK_COUNT)
    assert LOCAL not in await server.say(f"hvad skal vi nu i {phase_name(2)}?", AARHUS)
    assert re.fullmatch(unknown_task(LOCAL), await server.say(f"vis {LOCAL}", AARHUS))
    history = await server.say("historik", AARHUS)
    assert history.splitlines()[2] == "- " + history_line("da", "local_remove", LOCAL)
    assert history_line("da", "done", LOCAL) in history  # the removed task is still named in its history


async def test_markup_in_a_local_tasks_title_is_stripped(aarhus):
    reply = await aarhus.say(f"tilføj lokal opgave *fed* [link](x) i {phase_name(1)} under Projektstyring", AARHUS)
    assert reply == t("da", "local.added", title="fed link x", number=1, phase=phase_name(1),
                      theme=THEME["projektstyring"]["da"])
    before = len(aarhus.connector.sent)
    listing = await aarhus.say("hvad skal vi nu?", AARHUS)
    payload = json.dumps(aarhus.connector.sent[before:], ensure_ascii=False)
    assert "fed link x" in listing
    for markup in ("*fed*", "[link]", "](x)", "\\*", "\\["):
        assert markup not in payload
    [event] = [e for e in await aarhus.events() if e["action"] == "local_add"]
    assert event["details"]["task"]["title"] == "fed link x"


async def test_a_local_task_in_english(server):
    chat = group_chat(5, tenant=OTHER_TENANT)
    await server.say("register Odense", chat, EMMA)
    title = "Inform the works council"
    asked = await server.say(f"add local task '{title}'", chat, EMMA)
    assert asked == t("en", "local.which_phase", title=title,
                      options=either("en", [f"{n} {phase_name(n, 'en')}" for n in sorted(PHASES)]))
    asked = await server.say(f"add local task '{title}' in {phase_name(2, 'en')}", chat, EMMA)
    assert asked == t("en", "local.which_theme", title=title, options=either("en", [th["name"]["en"] for th in THEMES]))
    added = f"add local task '{title}' in {phase_name(2, 'en')} under {ORGANISING['en']}"
    assert await server.say(added, chat, EMMA) == \
        t("en", "local.added", title=title, number=2, phase=phase_name(2, "en"), theme=ORGANISING["en"])
    listing = await server.say(f"what's next in {phase_name(2, 'en')}?", chat, EMMA)
    assert listing.splitlines()[0] == t("en", "next.header", number=2, phase=phase_name(2, "en"), done=0,
                                        total=PHASE_COUNT[2] + 1)
    number = int(re.search(rf"^(\d+)\. {re.escape(title)}$", listing, re.M)[1])
    done = t("en", "mark.progress", number=2, phase=phase_name(2, "en"), progress=progress("en", 1, PHASE_COUNT[2] + 1))
    assert await server.say(f"done {number}", chat, EMMA) == \
        t("en", "mark.done", task=title, who="Emma Smith") + "\n\n" + done
    assert status_rows(await server.say("status", chat, EMMA), "en")[1] == (1, KLIK_COUNT + 1)
    details = await server.say(f"show {title}", chat, EMMA)
    assert t("en", "details.kind.local", number=2, phase=phase_name(2, "en"), theme=ORGANISING["en"]) in details
    assert await server.say(f"remove local task {TRAINING['en']}", chat, EMMA) == \
        t("en", "local.not_local", title=TRAINING["en"])
    assert await server.say(f"remove local task {title}", chat, EMMA) == t("en", "local.removed", title=title)
    assert status_rows(await server.say("status", chat, EMMA), "en")[1] == (0, KLIK_COUNT)
    assert history_line("en", "local_remove", title, "Emma Smith") in await server.say("history", chat, EMMA)


async def test_a_removed_local_task_stays_forgotten_after_a_restart(aarhus):
    for text in (ADD, f"udført {LOCAL}", f"fjern lokal opgave {LOCAL}"):
        await aarhus.say(text, AARHUS)
    await aarhus.restart()
    await aarhus.say(ADD, AARHUS)
    rows, _ = status_rows(await aarhus.say("status", AARHUS))
    assert rows[2] == (0, PHASE_COUNT[2] + 1)
    assert t("da", "details.open") in await aarhus.say(f"vis {LOCAL}", AARHUS)


async def test_a_removed_local_task_leaves_no_assignment_behind(aarhus):
    for text in (ADD, f"sæt Lars Nielsen som udfører af {LOCAL}", f"fjern lokal opgave {LOCAL}", ADD):
        await aarhus.say(text, AARHUS)
    assert f"{t('da', 'assign.role.performer')}:" not in await aarhus.say(f"vis {LOCAL}", AARHUS)


# -- task details -----------------------------------------------------------------------------------
# How each milestone is set in the test below (the two in the model's order, so neither is refused).
MILESTONE_SET = {
    "idriftsaettelsesdato": (date(2027, 2, 15), {"da": "sæt idriftsættelsesdato til 15-02-2027",
                                                 "en": "set the commissioning date to 15-02-2027"}),
    "go-live": (date(2027, 3, 1), {"da": "go-live er 1. marts 2027", "en": "our go-live is 1 March 2027"}),
}


def deadline(lang: str, task: dict, due: date | None = None) -> str:
    """The task's deadline paragraph: "**Vejledende frist (udkast):** [date (]8 uger før idriftsættelsesdatoen[)]".
    tasks.yaml's details are this project's draft unless the task (or the file) names another source."""
    kind = (task.get("details_source") or TASKS_FILE["sources"]["details"])["kind"]
    label = t(lang, "details.deadline.draft" if kind == "draft" else "details.deadline")
    weeks = task["due"]["weeks_before"]
    milestone = t(lang, f"milestone.in_text.{task['due']['milestone']}")
    relative = counted(lang, "details.due.before" if weeks >= 0 else "details.due.after", abs(weeks), milestone=milestone)
    return f"**{label}:** " + (f"{day(lang, due)} ({relative})" if due else relative)


@pytest.mark.parametrize("lang", ["da", "en"])
async def test_task_details_and_the_deadline_before_and_after_its_milestone(server, lang):
    where = channel() if lang == "da" else group_chat(6, tenant=OTHER_TENANT)
    who = METTE if lang == "da" else EMMA
    await server.say("tilmeld Aarhus" if lang == "da" else "register Odense", where, who)
    task = TASKS["planlaeg-uddannelse"]
    title = task["title"][lang]
    show = f"vis {title}" if lang == "da" else f"show {title}"
    details = await server.say(show, where, who)
    kind = (task.get("source") or TASKS_FILE["sources"]["title"])["kind"]
    where_line = t(lang, f"details.kind.{kind}", number=task["phase"], phase=phase_name(task["phase"], lang),
                   theme=THEME[task["theme"]][lang])
    if (task.get("details_source") or TASKS_FILE["sources"]["details"])["kind"] == "draft":
        where_line += " " + t(lang, "details.placement.draft")  # the model places no task in a phase
    parts = details.split("\n\n")
    assert parts[:2] == [f"**{title}**", where_line]
    for field in ("description", "prerequisites", "result", "responsible"):
        assert f"**{t(lang, f'details.{field}')}:** {task[field][lang]}" in parts
    assert task["due"]["weeks_before"] > 0
    assert deadline(lang, task) in parts  # no date yet: only how long before its milestone
    assert t(lang, "details.open") in parts

    for when, said in MILESTONE_SET.values():
        assert day(lang, when) in await server.say(said[lang], where, who)
    parts = (await server.say(show, where, who)).split("\n\n")
    milestone_date = MILESTONE_SET[task["due"]["milestone"]][0]
    due = milestone_date - timedelta(weeks=task["due"]["weeks_before"])
    assert due < milestone_date and deadline(lang, task, due) in parts

    # A task due after its milestone says so.
    after = TASKS["etabler-nye-arbejdsgange"]
    assert after["due"]["weeks_before"] < 0
    parts = (await server.say(f"{show.split()[0]} {after['title'][lang]}", where, who)).split("\n\n")
    milestone_date = MILESTONE_SET[after["due"]["milestone"]][0]
    due = milestone_date - timedelta(weeks=after["due"]["weeks_before"])
    assert due > milestone_date and deadline(lang, after, due) in parts
