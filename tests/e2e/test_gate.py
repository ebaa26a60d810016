"""The phase transition self-check ("faseovergang") end to end over HTTP, in Danish and in English.

Flow under test (dialogs/gate.py): the last open task of the current phase starts a checklist of that phase's
success criteria; "ja 1 3" confirms, "ikke endnu 2: note" records a gap, "ja til alle" completes when every
criterion is confirmed, "fortsæt alligevel" moves on with the gaps as exceptions; "gå videre til ..." with open
tasks first names their count; moving back is allowed and recorded. Expected texts are the catalog wording
(content/locale/*/LC_MESSAGES/messages.po, through tests/wording.py) and the model's own criteria
(content/data/phases.yaml), read here independently of the product's loader.
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

import bot.app
from tests.harness import OTHER_TENANT, Person, answer_text, channel
from tests.wording import progress, source_line, status_of, t, tn, wrong_forms

DATA = Path(__file__).resolve().parents[2] / "content" / "data"
PHASES = {p["number"]: p for p in yaml.safe_load((DATA / "phases.yaml").read_text(encoding="utf-8"))["phases"]}
TASKS = yaml.safe_load((DATA / "tasks.yaml").read_text(encoding="utf-8"))["tasks"]
CRITERIA = PHASES[1]["success_criteria"]
assert len(CRITERIA) == 4  # the model: Fase 1 Opstart has four success criteria

pytestmark = pytest.mark.both_stores  # every test on the data dir and on PostgreSQL (tests/conftest.py)

ROOM = channel()
BOTH = pytest.mark.parametrize("lang", ["da", "en"])
LOCALE = {"da": "da-DK", "en": "en-US"}
STAMP = "2026-11-27T09:30:00+00:00"  # the harness clock
WHEN = {"da": "27. nov. 2026 kl. 10.30", "en": "27 Nov 2026, 10:30"}  # STAMP as history shows it (Copenhagen)


@pytest.fixture(scope="module", autouse=True)
def _content_parsed_once(content):
    """Each server still builds its own app, catalogs, understander and store; only the parsed content is shared."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bot.app, "load_content", lambda *args, **kwargs: content)
        yield


def mette(lang: str) -> Person:
    return Person(aad_id="aad-mette", name="Mette Hansen", locale=LOCALE[lang])


def phase_name(number: int, lang: str) -> str:
    return PHASES[number]["name"][lang]


# What people type, per language.
SAY = {
    "da": {"register": "tilmeld Aarhus", "next": "hvad skal vi nu?", "done": "udført {n}", "undo": "fortryd {n}",
           "yes13": "ja 1 3", "yes": "ja {n}", "no2": "ikke endnu 2: {note}", "all": "ja til alle",
           "proceed": "fortsæt alligevel", "move2": "gå videre til Forberedelse", "back1": "gå tilbage til Opstart",
           "jump4": "gå videre til Forankring", "stay1": "gå videre til Opstart", "history": "historik"},
    "en": {"register": "register Aarhus", "next": "what's next?", "done": "done {n}", "undo": "reopen {n}",
           "yes13": "yes 1 3", "yes": "yes {n}", "no2": "not yet 2: {note}", "all": "yes to all",
           "proceed": "proceed anyway", "move2": "move on to phase 2", "back1": "move back to phase 1",
           "jump4": "move on to Embedding", "stay1": "move on to Start-up", "history": "history"},
}
# A note as typed: capitals and æøå must come back unchanged.
NOTE = {"da": "mangler budget fra Økonomiudvalget på mødet i Århus",
        "en": "budget missing until Økonomiudvalget in Århus decides"}

AARHUS_NAME = "Aarhus Kommune"


def phase1_progress(lang: str, done: int) -> str:
    """mark.progress for Fase 1: "Fase 1: Opstart – 3 af 6 opgaver udført."."""
    total = sum(task["phase"] == 1 for task in TASKS)
    return t(lang, "mark.progress", number=1, phase=phase_name(1, lang), progress=progress(lang, done, total))


def history_phase(lang: str, when: str, source: int, target: int, exceptions: int = 0) -> str:
    """A phase move in the history list: "- {when}: Mette Hansen <history.phase>: Fase 1: Opstart → Fase 2:
    Forberedelse[ med 2 undtagelser]"."""
    detail = " → ".join(t(lang, "phase.label", number=n, phase=phase_name(n, lang)) for n in (source, target))
    if exceptions:
        detail += " " + tn(lang, "history.exceptions", exceptions)
    return "- " + t(lang, "history.phase", when=when, who="Mette Hansen", detail=detail)


def refused(lang: str) -> str:
    return t(lang, "tenant.refused", name=AARHUS_NAME)


def checklist(lang: str, marks: dict[int, tuple[bool, str]] | None = None) -> str:
    """The Fase 1 -> Fase 2 self-check as the bot must print it; marks: number -> (ok, note)."""
    marks = marks or {}
    rows = []
    for number, criterion in enumerate(CRITERIA, start=1):
        mark = marks.get(number)
        box = "⬜" if mark is None else ("✅" if mark[0] else "❌")
        note = f" – _{mark[1]}_" if mark and mark[1] else ""
        rows.append(f"{number}. {box} {criterion[lang]}{note}")
    return "\n\n".join([t(lang, "gate.header", source=1, source_name=phase_name(1, lang), target=2,
                          target_name=phase_name(2, lang)),
                        t(lang, "gate.intro"), "\n".join(rows), t(lang, "gate.how"),
                        source_line(lang, PHASES[1]["source"])])  # the criteria are the model's words


def moved(lang: str, target: int, exceptions: int = 0) -> str:
    """The reply that completes a transition."""
    if exceptions:
        head = tn(lang, "gate.done.exceptions", exceptions, target=target, target_name=phase_name(target, lang))
    else:
        head = t(lang, "gate.done", target=target, target_name=phase_name(target, lang))
    return head + "\n\n" + t(lang, "gate.next", target=target)


def answers(marks: dict[int, tuple[bool | None, str]]) -> list[dict]:
    """The audit's answers: the model's own (Danish) words, ok True/False/None (unanswered), the note."""
    return [{"criterion": c["da"], "ok": marks.get(i, (None, ""))[0], "note": marks.get(i, (None, ""))[1]}
            for i, c in enumerate(CRITERIA, start=1)]




async def phase_events(server) -> list[dict]:
    return [e for e in await server.events() if e["action"] == "phase"]




async def say(server, lang: str, text: str, where=ROOM, person: Person | None = None) -> str:
    before = len(server.connector.sent)
    status = await server.post(server.message(text, where, person or mette(lang)))
    assert status < 300, f"POST /api/messages answered {status} for {text!r}"
    return answer_text(server.connector.sent[before:])


async def act(server, lang: str, key: str, **values) -> str:
    return await say(server, lang, SAY[lang][key].format(**values))


async def register(server, lang: str) -> None:
    assert f"**{AARHUS_NAME}**" in await act(server, lang, "register")


async def status(server, lang: str) -> str:
    return await say(server, lang, "status")


def in_phase(lang: str, number: int) -> str:
    return t(lang, "status.header", name=AARHUS_NAME, number=number, phase=phase_name(number, lang))


async def finish_phase_1(server, lang: str) -> str:
    """Mark the six tasks of Fase 1 from the "what's next" list; returns the reply to the sixth."""
    await act(server, lang, "next")
    for n in range(1, 6):
        assert phase1_progress(lang, n) in await act(server, lang, "done", n=n)
    return await act(server, lang, "done", n=6)


async def open_gate_by_skipping(server, lang: str, open_tasks: int = 6) -> None:
    """Start the self-check with Fase 1 still open: "gå videre til Forberedelse", then "fortsæt alligevel"."""
    assert await act(server, lang, "move2") == tn(lang, "gate.open_tasks", open_tasks, source=1,
                                                    source_name=phase_name(1, lang))
    assert await act(server, lang, "proceed") == checklist(lang)


# -- 1. the last task starts the self-check; all confirmed -> next phase ------------------------------------
@BOTH
async def test_last_task_starts_the_self_check_and_confirming_all_moves_to_phase_2(server, lang):
    await register(server, lang)
    reply = await finish_phase_1(server, lang)
    assert phase1_progress(lang, 6) in reply
    complete = t(lang, "mark.phase_complete", number=1, phase=phase_name(1, lang))
    assert reply.endswith(complete + "\n\n" + checklist(lang)), reply
    assert reply.count("⬜") == 4

    assert await act(server, lang, "yes13") == checklist(lang, {1: (True, ""), 3: (True, "")})
    reply = await act(server, lang, "no2", note=NOTE[lang])
    assert reply == checklist(lang, {1: (True, ""), 2: (False, NOTE[lang]), 3: (True, "")})

    # Nothing has moved yet: status names the transition in progress, the trail has no phase event.
    now = await status(server, lang)
    assert now.startswith(in_phase(lang, 1))
    assert t(lang, "status.gate", target=2, target_name=phase_name(2, lang)) in now.split("\n\n")
    assert await phase_events(server) == []

    server.clock.now = datetime(2026, 12, 1, 13, 5, tzinfo=UTC)  # "when" is the turn's time
    assert await act(server, lang, "all") == moved(lang, 2)
    now = await status(server, lang)
    assert now.startswith(in_phase(lang, 2))
    assert "⬜" not in now and t(lang, "status.gate", target=2, target_name=phase_name(2, lang)) not in now

    (event,) = await phase_events(server)
    assert event["by"] == {"id": "aad-mette", "name": "Mette Hansen"}
    assert event["at"] == "2026-12-01T13:05:00+00:00"
    assert event["conversation"] == ROOM.conversation_id
    assert event["task_id"] is None
    assert event["details"] == {"from": 1, "to": 2, "exceptions": 0, "skipped_open": 0,
                                "answers": answers({i: (True, "") for i in range(1, 5)})}
    # The finished transition is gone: answering again finds none (the target named is now Fase 3).
    assert await act(server, lang, "yes", n=1) == t(lang, "gate.none", target_name=phase_name(3, lang))
    # History shows the move at the turn's time (Copenhagen), without an exceptions remark.
    history = (await act(server, lang, "history")).splitlines()
    when = {"da": "1. dec. 2026 kl. 14.05", "en": "1 Dec 2026, 14:05"}[lang]
    assert history[2] == history_phase(lang, when, 1, 2)


# -- 2. proceed anyway: the gaps become exceptions -------------------------------------------------------------
@BOTH
async def test_proceed_anyway_moves_on_with_exceptions_counted_and_notes_kept(server, lang):
    await register(server, lang)
    await finish_phase_1(server, lang)
    await act(server, lang, "yes13")
    await act(server, lang, "no2", note=NOTE[lang])
    # 2 rejected with a note, 4 never answered: two exceptions.
    assert await act(server, lang, "proceed") == moved(lang, 2, exceptions=2)
    assert (await status(server, lang)).startswith(in_phase(lang, 2))

    (event,) = await phase_events(server)
    assert event["details"] == {"from": 1, "to": 2, "exceptions": 2, "skipped_open": 0,
                                "answers": answers({1: (True, ""), 2: (False, NOTE[lang]), 3: (True, "")})}
    assert event["by"]["name"] == "Mette Hansen" and event["at"] == STAMP

    history = (await act(server, lang, "history")).splitlines()
    assert history[2] == history_phase(lang, WHEN[lang], 1, 2, exceptions=2), history  # newest first


@BOTH
async def test_proceed_anyway_with_nothing_answered_counts_every_criterion(server, lang):
    await register(server, lang)
    await finish_phase_1(server, lang)
    assert await act(server, lang, "proceed") == moved(lang, 2, exceptions=4)
    (event,) = await phase_events(server)
    assert event["details"]["exceptions"] == 4
    assert event["details"]["answers"] == answers({})


# -- 3. moving on with open tasks needs an explicit confirmation first --------------------------------------
@BOTH
async def test_move_on_with_open_tasks_names_the_count_and_waits_for_proceed_anyway(server, lang):
    await register(server, lang)
    await act(server, lang, "next")
    await act(server, lang, "done", n=2)  # one of six done: five open
    reply = await act(server, lang, "move2")
    assert reply == tn(lang, "gate.open_tasks", 5, source=1, source_name=phase_name(1, lang))
    # Nothing moves, and criteria cannot be answered before the skip is confirmed.
    assert await act(server, lang, "yes13") == tn(lang, "gate.skip_first", 5)
    assert await act(server, lang, "all") == tn(lang, "gate.skip_first", 5)
    assert (await status(server, lang)).startswith(in_phase(lang, 1))
    assert await phase_events(server) == []

    assert await act(server, lang, "proceed") == checklist(lang)
    assert await phase_events(server) == []
    assert await act(server, lang, "all") == moved(lang, 2)
    (event,) = await phase_events(server)
    assert event["details"]["skipped_open"] == 5
    assert event["details"]["exceptions"] == 0
    now = await status(server, lang)
    assert now.startswith(in_phase(lang, 2))
    assert status_of(lang, now, AARHUS_NAME).phases[1] == (phase_name(1, lang), 1, 6)  # the open tasks stay open


@BOTH
async def test_move_on_while_a_self_check_is_in_progress_shows_it_with_answers_kept(server, lang):
    await register(server, lang)
    await finish_phase_1(server, lang)
    assert await act(server, lang, "move2") == checklist(lang)
    await act(server, lang, "yes", n=4)
    assert await act(server, lang, "move2") == checklist(lang, {4: (True, "")})
    assert await phase_events(server) == []


# -- 4. moving back ---------------------------------------------------------------------------------------------
@BOTH
async def test_move_back_returns_to_phase_1_keeps_tasks_and_is_recorded(server, lang):
    await register(server, lang)
    await finish_phase_1(server, lang)
    await act(server, lang, "all")
    assert (await status(server, lang)).startswith(in_phase(lang, 2))

    assert await act(server, lang, "back1") == t(lang, "gate.back", target=1, target_name=phase_name(1, lang))
    now = await status(server, lang)
    assert now.startswith(in_phase(lang, 1))
    assert status_of(lang, now, AARHUS_NAME).phases[1] == (phase_name(1, lang), 6, 6)  # tasks done are kept
    back = (await phase_events(server))[-1]
    assert back["details"] == {"from": 2, "to": 1, "back": True}
    assert back["by"] == {"id": "aad-mette", "name": "Mette Hansen"} and back["at"] == STAMP
    assert [e["action"] for e in await server.events()].count("done") == 6  # no task was reopened

    history = (await act(server, lang, "history")).splitlines()
    assert history[2] == history_phase(lang, WHEN[lang], 2, 1)
    # Back in phase 1 with every task done, moving on again is a fresh self-check.
    assert await act(server, lang, "move2") == checklist(lang)


# -- 5. refusals that change nothing ---------------------------------------------------------------------------
@BOTH
async def test_jumping_two_phases_is_refused_one_at_a_time(server, lang):
    await register(server, lang)
    assert await act(server, lang, "jump4") == t(lang, "gate.one_at_a_time", target=2, target_name=phase_name(2, lang))
    assert (await status(server, lang)).startswith(in_phase(lang, 1))
    assert [e["action"] for e in await server.events()] == ["register"]
    assert await act(server, lang, "yes", n=1) == t(lang, "gate.none", target_name=phase_name(2, lang))  # no gate started


@BOTH
async def test_moving_to_the_current_phase_says_already_there(server, lang):
    await register(server, lang)
    assert await act(server, lang, "stay1") == t(lang, "gate.already", target=1, target_name=phase_name(1, lang))
    assert await act(server, lang, "back1") == t(lang, "gate.already", target=1, target_name=phase_name(1, lang))
    assert [e["action"] for e in await server.events()] == ["register"]


@BOTH
async def test_answers_without_a_gate_in_progress_get_gate_none(server, lang):
    await register(server, lang)
    none = t(lang, "gate.none", target_name=phase_name(2, lang))
    for key in ("yes13", "all", "proceed"):
        assert await act(server, lang, key) == none, key
    assert await act(server, lang, "no2", note=NOTE[lang]) == none
    now = await status(server, lang)
    assert now.startswith(in_phase(lang, 1))
    assert t(lang, "status.gate", target=2, target_name=phase_name(2, lang)) not in now
    assert [e["action"] for e in await server.events()] == ["register"]


@BOTH
async def test_out_of_range_criterion_asks_which_and_changes_nothing(server, lang):
    await register(server, lang)
    await finish_phase_1(server, lang)
    await act(server, lang, "yes", n=1)
    before = await server.events()
    assert await act(server, lang, "yes", n=9) == t(lang, "gate.which", last=4)
    assert await act(server, lang, "yes", n=0) == t(lang, "gate.which", last=4)
    assert await server.events() == before
    assert await act(server, lang, "move2") == checklist(lang, {1: (True, "")})  # the answers are unchanged


# -- 6. tenant isolation ----------------------------------------------------------------------------------------
@BOTH
async def test_a_forged_conversation_from_another_tenant_cannot_answer_or_move(server, lang):
    """The owner's team id arriving with another tenant: every gate action is refused and nothing changes."""
    await register(server, lang)
    await open_gate_by_skipping(server, lang)
    await act(server, lang, "yes", n=1)
    forged = channel(tenant=OTHER_TENANT)
    intruder = Person(aad_id="aad-mallory", name="Mallory", locale=LOCALE[lang])
    before = await server.events()
    texts = [SAY[lang][k] for k in ("yes13", "all", "proceed", "move2", "back1", "jump4")]
    texts.append(SAY[lang]["no2"].format(note="forged"))
    for text in texts:
        reply = await say(server, lang, text, forged, intruder)
        assert refused(lang) in reply, (text, reply)
        assert not any(c[lang] in reply for c in CRITERIA), text
    assert await server.events() == before
    # The owner's transition is exactly as it was.
    assert (await status(server, lang)).startswith(in_phase(lang, 1))
    assert await act(server, lang, "move2") == checklist(lang, {1: (True, "")})

    # Once the owner is in phase 2, the forged conversation cannot move it back either.
    await act(server, lang, "all")
    before = await server.events()
    assert refused(lang) in await say(server, lang, SAY[lang]["back1"], forged, intruder)
    assert await server.events() == before
    assert (await status(server, lang)).startswith(in_phase(lang, 2))


# -- 7. durability ------------------------------------------------------------------------------------------------
@BOTH
async def test_the_self_check_survives_a_server_restart(server, lang):
    await register(server, lang)
    await finish_phase_1(server, lang)
    await act(server, lang, "yes", n=1)
    await server.restart()
    await act(server, lang, "no2", note=NOTE[lang])
    await server.restart()
    now = await status(server, lang)
    assert now.startswith(in_phase(lang, 1))
    assert t(lang, "status.gate", target=2, target_name=phase_name(2, lang)) in now.split("\n\n")
    assert await act(server, lang, "yes", n="3 4") == checklist(
        lang, {1: (True, ""), 2: (False, NOTE[lang]), 3: (True, ""), 4: (True, "")})
    await server.restart()
    assert await act(server, lang, "yes", n=2) == moved(lang, 2)  # the last gap confirmed: all four
    (event,) = await phase_events(server)
    assert event["details"]["answers"] == answers({i: (True, "") for i in range(1, 5)})
    await server.restart()
    assert (await status(server, lang)).startswith(in_phase(lang, 2))


# -- 8. regressions: bugs found while writing these tests, fixed -----------------------------------------------
@BOTH
async def test_a_note_with_the_word_all_marks_only_the_named_criterion(server, lang):
    await register(server, lang)
    await finish_phase_1(server, lang)
    note = {"da": "ikke alle ledere er med", "en": "not all managers are on board"}[lang]
    assert await act(server, lang, "no2", note=note) == checklist(lang, {2: (False, note)})


@BOTH
async def test_a_note_starting_with_a_number_is_not_a_criterion(server, lang):
    await register(server, lang)
    await finish_phase_1(server, lang)
    note = {"da": "3 ledere mangler", "en": "3 managers missing"}[lang]
    assert await act(server, lang, "no2", note=note) == checklist(lang, {2: (False, note)})


async def test_a_note_keeps_its_punctuation(server):
    await register(server, "da")
    await finish_phase_1(server, "da")
    note = "budget mangler, afventer byrådet (maj)?"
    await act(server, "da", "no2", note=note)
    await act(server, "da", "proceed")
    (event,) = await phase_events(server)
    assert event["details"]["answers"][1]["note"] == note


@BOTH
async def test_repeating_move_on_while_a_skip_is_unconfirmed_repeats_the_question(server, lang):
    await register(server, lang)
    await act(server, lang, "move2")
    open_tasks = tn(lang, "gate.open_tasks", 6, source=1, source_name=phase_name(1, lang))
    assert await act(server, lang, "move2") == open_tasks


async def test_a_task_reopened_during_the_self_check_is_counted_as_open(server):
    lang = "da"
    await register(server, lang)
    await finish_phase_1(server, lang)
    assert phase1_progress(lang, 5) in await act(server, lang, "undo", n=6)
    reply = await act(server, lang, "all")
    events = await phase_events(server)
    if events:
        assert events[-1]["details"]["skipped_open"] == 1
    else:  # the one open task is named, in the singular
        assert reply in (tn(lang, "gate.skip_first", 1),
                         tn(lang, "gate.open_tasks", 1, source=1, source_name=phase_name(1, lang))), reply


@BOTH
async def test_one_exception_is_worded_in_the_singular(server, lang):
    await register(server, lang)
    await finish_phase_1(server, lang)
    await act(server, lang, "yes", n="1 2 3")
    reply = await act(server, lang, "proceed")
    history = await act(server, lang, "history")
    assert reply == moved(lang, 2, exceptions=1)
    assert history.splitlines()[2] == history_phase(lang, WHEN[lang], 1, 2, exceptions=1)
    target = {"target": 2, "target_name": phase_name(2, lang)}
    assert not any(wrong in reply for wrong in wrong_forms(lang, "gate.done.exceptions", 1, **target))
    assert not any(wrong in history for wrong in wrong_forms(lang, "history.exceptions", 1))
