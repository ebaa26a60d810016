"""A generated portfolio for the consultant-view tests: all 98 municipalities in three waves, each at its own
stage, written straight into the store's files (state.json as TinyDB documents, audit.jsonl as audit events),
together with the figures the bot should show, computed here from content/data/*.yaml without the product's
code (no content loader, no dialogs.progress).
"""
from __future__ import annotations

import csv
import json
import random
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml

from tests.harness import TENANT

REPO = Path(__file__).parents[1]
DATA = REPO / "content" / "data"
TODAY = date(2026, 11, 27)  # the harness clock (2026-11-27 09:30 UTC) in Copenhagen

# (id, Danish name, English name, idriftsaettelsesdato, go-live, members)
WAVES = [
    ("boelge-1", "Bølge 1", "Wave 1", date(2026, 10, 19), date(2026, 11, 2), 33),  # went live: much overdue
    ("boelge-2", "Bølge 2", "Wave 2", date(2027, 1, 18), date(2027, 2, 1), 33),  # 66 days ahead: >= 10 weeks overdue
    ("boelge-3", "Bølge 3", "Wave 3", date(2027, 7, 19), date(2027, 8, 2), 32),  # far ahead: only 34+ weeks overdue
]
# Municipalities the tests talk about, placed on purpose; the rest are shuffled into the waves.
PLACED = {"0751": "boelge-2", "0461": "boelge-2", "0169": "boelge-1", "0185": "boelge-3", "0101": "boelge-2"}
AARHUS_SCOPE = "team:19:team-aarhus@thread.tacv2"  # tests.harness.channel()'s team
OWN_GOLIVE = date(2027, 4, 12)  # every 7th municipality has its own go-live, which wins over its wave's
PEOPLE = ["Mette Hansen", "Søren Østergaard", "Åse Læsø", "Lars Nielsen", "Jens Ærbø"]
THEME_IDS = [t["id"] for t in yaml.safe_load((DATA / "themes.yaml").read_text(encoding="utf-8"))["themes"]]
PHASES = yaml.safe_load((DATA / "phases.yaml").read_text(encoding="utf-8"))["phases"]
THEME_NAMES = {t["id"]: t["name"] for t in yaml.safe_load((DATA / "themes.yaml").read_text(encoding="utf-8"))["themes"]}


@dataclass(frozen=True)
class KlikTask:
    id: str
    phase: int
    theme: str
    title_da: str
    due: tuple[str, int] | None  # (milestone, weeks before it)


KLIK = [KlikTask(t["id"], t["phase"], t["theme"], t["title"]["da"],
                 (t["due"]["milestone"], t["due"]["weeks_before"]) if t.get("due") else None)
        for t in yaml.safe_load((DATA / "tasks.yaml").read_text(encoding="utf-8"))["tasks"]]


def municipalities() -> dict[str, str]:
    """code -> name, from content/data/municipalities.csv."""
    with (DATA / "municipalities.csv").open(encoding="utf-8") as fh:
        return {row["kommunekode"]: row["navn"] for row in csv.DictReader(fh)}


@dataclass
class Expected:
    """One municipality as generated, and what a consultant should see for it."""

    code: str
    name: str
    wave: str
    tenant: str
    phase: int
    milestones: dict[str, date]  # effective: own dates over the wave's
    tasks: list[tuple[str, int, str, str, tuple[str, int] | None, bool]]  # (id, phase, theme, title, due, local)
    done: dict[str, str]  # task id -> who, for tasks done now
    done_at: dict[str, str]
    assignments: dict[str, dict[str, str]] = field(default_factory=dict)  # task id -> role -> name

    def counts(self, phase: int | None = None) -> tuple[int, int]:
        tasks = [t for t in self.tasks if phase is None or t[1] == phase]
        return sum(t[0] in self.done for t in tasks), len(tasks)

    @staticmethod
    def pct(done: int, total: int) -> int:
        return round(100 * done / total) if total else 100

    @property
    def phase_pct(self) -> int:
        return self.pct(*self.counts(self.phase))

    @property
    def overall_pct(self) -> int:
        return self.pct(*self.counts())

    @property
    def overdue(self) -> int:
        return sum(1 for t in self.tasks if t[4] is not None and t[4][0] in self.milestones and t[0] not in self.done
                   and self.milestones[t[4][0]] - timedelta(weeks=t[4][1]) < TODAY)

    @property
    def next_milestone(self) -> tuple[str, date] | None:
        ahead = sorted((d, n) for n, d in self.milestones.items() if d >= TODAY)
        return (ahead[0][1], ahead[0][0]) if ahead else None


def wave_yaml(members: dict[str, list[str]]) -> str:
    out = ["  waves:"]
    for wave_id, da, en, first, second, _ in WAVES:
        out += [f"    - id: {wave_id}",
                f'      name: {{da: "{da}", en: "{en}"}}',
                f"      milestones: {{idriftsaettelsesdato: {first.isoformat()}, go-live: {second.isoformat()}}}",
                "      members: [" + ", ".join(f'"{c}"' for c in members[wave_id]) + "]"]
    return "\n".join(out) + "\n"


def write_content(root: Path, members: dict[str, list[str]]) -> Path:
    """A copy of the content dir whose project.yaml has the three waves."""
    shutil.copytree(REPO / "content", root, ignore=shutil.ignore_patterns("__pycache__"))
    project = root / "data" / "project.yaml"
    text = project.read_text(encoding="utf-8")
    assert "  waves: []\n" in text
    project.write_text(text.replace("  waves: []\n", wave_yaml(members)), encoding="utf-8")
    return root


def _iso(day: date, minute: int) -> str:
    return datetime(day.year, day.month, day.day, 8, 0, tzinfo=UTC).replace(minute=minute % 60).isoformat()


def generate(seed: int = 2026, local_range: tuple[int, int] = (3, 9)) -> tuple[dict[str, list[str]], list[Expected]]:
    rng = random.Random(seed)
    names = municipalities()
    codes = sorted(names)
    free = [c for c in codes if c not in PLACED]
    rng.shuffle(free)
    members: dict[str, list[str]] = {}
    for wave_id, *_, size in WAVES:
        placed = [c for c, w in PLACED.items() if w == wave_id]
        take = size - len(placed)
        members[wave_id], free = sorted(placed + free[:take]), free[take:]
    assert not free and sum(len(m) for m in members.values()) == 98
    wave_of = {c: w for w, cs in members.items() for c in cs}
    dates = {w[0]: {"idriftsaettelsesdato": w[3], "go-live": w[4]} for w in WAVES}
    out = []
    for index, code in enumerate(codes):
        phase = [1, 2, 3, 4][index % 4] if code != "0751" else 2
        own = {"go-live": OWN_GOLIVE} if index % 7 == 3 and code != "0751" else {}
        locals_ = [(f"lokal-{code}-{j}", rng.randint(1, 4), rng.choice(THEME_IDS),
                    f"Lokal opgave {j}: Informér MED-udvalget i {names[code]}", None, True)
                   for j in range(rng.randint(*local_range))]
        tasks = [(t.id, t.phase, t.theme, t.title_da, t.due, False) for t in KLIK] + locals_
        share = rng.random()
        earlier = 1.0 if index % 3 == 0 else 0.9  # some caught up on everything before their phase
        done, done_at = {}, {}
        for n, task in enumerate(tasks):
            chance = earlier if task[1] < phase else share if task[1] == phase else 0.05
            if rng.random() < chance:
                done[task[0]] = rng.choice(PEOPLE)
                done_at[task[0]] = _iso(date(2026, 3 + n % 8, 1 + index % 27), n)
        tenant = TENANT if code == "0751" else f"tenant-{code}"
        expected = Expected(code, names[code], wave_of[code], tenant, phase,
                            {**dates[wave_of[code]], **own}, tasks, done, done_at)
        if index % 5 == 0:
            expected.assignments = {KLIK[index % len(KLIK)].id: {"responsible": rng.choice(PEOPLE)},
                                    KLIK[(index + 3) % len(KLIK)].id: {"performer": rng.choice(PEOPLE)}}
        out.append(expected)
    return members, out


def write_store(data_dir: Path, rows: list[Expected], seed: int = 7) -> None:
    """state.json and audit.jsonl in bot/store.py's formats, consistent with each other (nothing to replay)."""
    rng = random.Random(seed)
    data_dir.mkdir(parents=True, exist_ok=True)
    municipalities_table, registrations, audit = {}, {}, []

    def event(code, action, at, task_id=None, scope=None, tenant_id=None, details=None, by=None):
        audit.append({"code": code, "action": action, "task_id": task_id,
                      "by": by or {"id": f"aad-{code}-admin", "name": "Mette Hansen"}, "at": at,
                      "conversation": f"19:general-{code}@thread.tacv2", "scope": scope, "tenant_id": tenant_id,
                      "details": details})

    for n, row in enumerate(rows, start=1):
        code = row.code
        scope = AARHUS_SCOPE if code == "0751" else f"team:19:team-{code}@thread.tacv2"
        registered = _iso(date(2026, 2, 1 + n % 27), n)
        registrations[str(n)] = {"scope": scope, "code": code, "tenant_id": row.tenant,
                                 "by": {"id": f"aad-{code}-admin", "name": "Mette Hansen"}, "at": registered}
        event(code, "register", registered, scope=scope, tenant_id=row.tenant)
        locals_ = [{"id": t[0], "phase": t[1], "theme": t[2], "title": t[3]} for t in row.tasks if t[5]]
        for entry in locals_:
            event(code, "local_add", _iso(date(2026, 2, 28), n), task_id=entry["id"], details={"task": entry})
        tasks = {}
        for task_id, _, _, title, _, local in row.tasks:
            details = {"title": title} if local else None
            if task_id in row.done:
                by = {"id": f"aad-{code}-{row.done[task_id][:4].lower()}", "name": row.done[task_id]}
                state = {"done": True, "by": by, "at": row.done_at[task_id], "conversation": f"19:general-{code}@thread.tacv2"}
                event(code, "done", state["at"], task_id=task_id, by=by, details=details)
                tasks[task_id] = state
            elif rng.random() < 0.08:  # done once, then reopened: stored, but not done
                by = {"id": f"aad-{code}-x", "name": "Åse Læsø"}
                event(code, "done", _iso(date(2026, 4, 2), n), task_id=task_id, by=by, details=details)
                at = _iso(date(2026, 4, 3), n)
                event(code, "reopen", at, task_id=task_id, by=by, details=details)
                tasks[task_id] = {"done": False, "by": by, "at": at, "conversation": f"19:general-{code}@thread.tacv2"}
        doc = {"code": code, "tenant_id": row.tenant, "tasks": tasks, "local_tasks": locals_}
        own = {k: v for k, v in row.milestones.items() if v == OWN_GOLIVE}
        if own:
            at = _iso(date(2026, 5, 5), n)
            doc["milestones"] = {k: v.isoformat() for k, v in own.items()}
            for name, day in own.items():
                event(code, "milestone", at, details={"name": name, "date": day.isoformat()})
        if row.assignments:
            doc["assignments"] = {}
            for task_id, roles in row.assignments.items():
                for role, name in roles.items():
                    person = {"id": "", "name": name}
                    doc["assignments"].setdefault(task_id, {})[role] = person
                    event(code, "assign", _iso(date(2026, 6, 6), n), task_id=task_id,
                          details={"role": role, "person": person})
        if row.phase > 1:
            at = _iso(date(2026, 9, 9), n)
            doc.update(phase=row.phase, gate=None, phase_at=at)
            event(code, "phase", at, details={"from": row.phase - 1, "to": row.phase, "answers": {}, "exceptions": 0,
                                              "skipped_open": 0})
        municipalities_table[str(n)] = doc
    (data_dir / "state.json").write_text(json.dumps({"municipalities": municipalities_table,
                                                     "registrations": registrations}, ensure_ascii=False),
                                         encoding="utf-8")
    (data_dir / "audit.jsonl").write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in audit),
                                          encoding="utf-8")
