"""Reads content/ and validates it. Every problem is reported as `file: field: message`."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ValidationError

from content.names import key
from content.schema import (
    AliasesFile,
    Content,
    GlossaryFile,
    Municipality,
    PhasesFile,
    ProjectFile,
    TasksFile,
    ThemesFile,
)

CONTENT_ROOT = Path(__file__).resolve().parent
LANGUAGES = ("da", "en")
M = TypeVar("M", bound=BaseModel)


class ContentError(Exception):
    """A content file is missing, unreadable or invalid. The message names the file and the field."""


def _field_path(loc: tuple, data: object) -> str:
    """('tasks', 3, 'title', 'en') -> 'tasks[3] (id=udpeg-gevinstejer).title.en' so the editor finds it."""
    out, node = "", data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and "id" in node:
                out += f" (id={node['id']})"
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"


def _read_yaml(path: Path) -> object:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError:
        raise ContentError(f"{path}: file is missing") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "syntax"
        raise ContentError(f"{path}: {where}: {getattr(exc, 'problem', exc)}") from None


def _validate(model: type[M], data: object, path: Path) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: {_field_path(e['loc'], data)}: {e['msg']}" for e in exc.errors()[:5]]
        raise ContentError("\n".join(lines)) from None


def _require(ok: bool, path: Path, field: str, message: str) -> None:
    if not ok:
        raise ContentError(f"{path}: {field}: {message}")


def _load_municipalities(data_dir: Path) -> list[Municipality]:
    csv_path, alias_path = data_dir / "municipalities.csv", data_dir / "municipality_aliases.yaml"
    aliases = _validate(AliasesFile, _read_yaml(alias_path), alias_path).aliases
    try:
        with csv_path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise ContentError(f"{csv_path}: file is missing") from None
    out = []
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        record = {"code": row.get("kommunekode"), "name": row.get("navn"), "region": row.get("region")}
        try:
            out.append(Municipality(**record, aliases=aliases.get(record["code"] or "", [])))
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ContentError(f"{csv_path}: line {i}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    codes = {m.code for m in out}
    for code in aliases:
        _require(code in codes, alias_path, f"aliases.{code}", "no municipality has this code")
    _require(len(codes) == len(out), csv_path, "kommunekode", "a code appears twice")
    return out


def _check_unique(items, key, path: Path, field: str) -> None:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        value = key(item)
        _require(value not in seen, path, f"{field}[{i}]", f"'{value}' is already used by item {seen.get(value)}")
        seen[value] = i


def load_content(root: Path = CONTENT_ROOT) -> Content:
    data_dir = root / "data"
    paths = {name: data_dir / f"{name}.yaml" for name in ("phases", "themes", "tasks", "glossary", "project")}
    municipalities = _load_municipalities(data_dir)
    phases = _validate(PhasesFile, _read_yaml(paths["phases"]), paths["phases"]).phases
    themes = _validate(ThemesFile, _read_yaml(paths["themes"]), paths["themes"]).themes
    tasks = _validate(TasksFile, _read_yaml(paths["tasks"]), paths["tasks"]).tasks
    terms = _validate(GlossaryFile, _read_yaml(paths["glossary"]), paths["glossary"]).terms
    project = _validate(ProjectFile, _read_yaml(paths["project"]), paths["project"]).project

    for i, phase in enumerate(phases):
        _require(phase.number == i + 1, paths["phases"], f"phases[{i}].number", f"expected {i + 1} (phases in order)")
    _check_unique(themes, lambda t: t.id, paths["themes"], "themes")
    theme_ids = {t.id for t in themes}

    all_tasks = [*tasks, *project.add_tasks]
    _check_unique(tasks, lambda t: t.id, paths["tasks"], "tasks")
    seen_ids = {t.id for t in tasks}
    for i, task in enumerate(project.add_tasks):
        _require(task.id not in seen_ids, paths["project"], f"project.add_tasks[{i}].id", f"'{task.id}' already exists")
        seen_ids.add(task.id)
    for where, group, path in (("tasks", tasks, paths["tasks"]), ("project.add_tasks", project.add_tasks, paths["project"])):
        for i, task in enumerate(group):
            _require(task.theme in theme_ids, path, f"{where}[{i}] (id={task.id}).theme", f"unknown theme '{task.theme}'")
    for i, task_id in enumerate(project.exclude_tasks):
        _require(task_id in {t.id for t in tasks}, paths["project"], f"project.exclude_tasks[{i}]", f"unknown task '{task_id}'")
    effective = [t for t in all_tasks if t.id not in set(project.exclude_tasks)]

    # A name that points at two tasks would let "done <name>" mark the wrong one.
    owner: dict[str, str] = {}
    added = {t.id for t in project.add_tasks}
    for task in effective:
        path, where = (paths["project"], "project.add_tasks") if task.id in added else (paths["tasks"], "tasks")
        # Compared as the lookup compares them (case, æ/ae, spaces and hyphens folded away).
        for name in {key(task.title.da), key(task.title.en), *(key(a) for a in task.aliases.all())} - {""}:
            _require(owner.get(name, task.id) == task.id, path, f"{where} (id={task.id}).aliases",
                     f"'{name}' also names task '{owner.get(name)}'")
            owner[name] = task.id

    codes = {m.code for m in municipalities}
    member_of: dict[str, str] = {}
    for i, wave in enumerate(project.waves):
        for j, code in enumerate(wave.members):
            field = f"project.waves[{i}] (id={wave.id}).members[{j}]"
            _require(code in codes, paths["project"], field, f"no municipality has code '{code}'")
            _require(code not in member_of, paths["project"], field, f"'{code}' is already in wave '{member_of.get(code)}'")
            member_of[code] = wave.id
        dates = wave.milestones
        if "idriftsaettelsesdato" in dates and "go-live" in dates:
            _require(dates["idriftsaettelsesdato"] <= dates["go-live"], paths["project"],
                     f"project.waves[{i}] (id={wave.id}).milestones", "go-live is before idriftsaettelsesdato")
    _check_unique(project.waves, lambda w: w.id, paths["project"], "project.waves")
    for name, phase in project.nudges.phase_due.items():
        _require(1 <= phase <= len(phases), paths["project"], f"project.nudges.phase_due.{name}", "no such phase")
    try:
        ZoneInfo(project.nudges.window.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ContentError(f"{paths['project']}: project.nudges.window.timezone: unknown time zone") from None

    _check_unique(terms, lambda t: t.id, paths["glossary"], "terms")
    term_ids = {t.id for t in terms}
    for i, term in enumerate(terms):
        for rel in term.related:
            _require(rel in term_ids, paths["glossary"], f"terms[{i}] (id={term.id}).related", f"unknown term '{rel}'")

    sentences = {}
    for lang in LANGUAGES:
        path = root / "sentences" / f"{lang}.yaml"
        data = _read_yaml(path)
        _require(isinstance(data, dict) and isinstance(data.get("intents"), dict), path, "intents", "must be a mapping")
        sentences[lang] = data

    return Content(
        phases=phases, themes=themes, tasks=effective, terms=terms,
        municipalities=municipalities, project=project, sentences=sentences,
    )
