"""Reads content/ and validates it. Every problem is reported as `file: field: message`."""
from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ValidationError

from content.names import key
from content.schema import (
    MILESTONE_ORDER,
    AliasesFile,
    Content,
    ExamplesFile,
    GlossaryFile,
    IntentsFile,
    IntentSpec,
    MilestoneName,
    ModelFile,
    ModelWordsFile,
    Municipality,
    PhasesFile,
    ProjectFile,
    Source,
    Task,
    TasksFile,
    ThemesFile,
    TrainingFile,
    WordsFile,
)

CONTENT_ROOT = Path(__file__).resolve().parent
LANGUAGES = ("da", "en")
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class ContentError(Exception):
    """A content file is missing, unreadable or invalid. The message names the file and the field."""


def _field_path(loc: tuple[int | str, ...], data: object) -> str:
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


# libyaml's parser where PyYAML was built with it (it is, from PyPI's wheels): the same documents, 5x faster.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> object:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_LOADER)
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


def _check_unique(items: Iterable[T], key: Callable[[T], str], path: Path, field: str) -> None:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        value = key(item)
        _require(value not in seen, path, f"{field}[{i}]", f"'{value}' is already used by item {seen.get(value)}")
        seen[value] = i


def _with_sources(task: Task, title: Source, details: Source) -> Task:
    """The task with its file's sources where it names none of its own."""
    return task.model_copy(update={"source": task.source or title, "details_source": task.details_source or details})


def _due_contradicts(task: Task, phase_due: dict[MilestoneName, int]) -> str | None:
    """Why the task's deadline contradicts the phase plan, or None.

    `phase_due` says that the phases up to N must be finished by a milestone. A task of such a phase must then be
    due no later than the earliest milestone its phase is due by: at or before it. How long after that a later
    phase's task may be due is the project's call (phases may overlap in practice, the model says)."""
    if task.due is None:
        return None
    bound = next((m for m in MILESTONE_ORDER if phase_due.get(m, 0) >= task.phase), None)
    if bound is None:
        return None
    due = f"{{milestone: {task.due.milestone}, weeks_before: {task.due.weeks_before}}}"
    if MILESTONE_ORDER.index(task.due.milestone) > MILESTONE_ORDER.index(bound) or task.due.weeks_before < 0:
        return (f"{due} may fall after {bound}, but project.phase_due says phase {task.phase} (this task's) must be "
                f"finished by {bound}")
    return None


def load_content(root: Path = CONTENT_ROOT) -> Content:
    data_dir = root / "data"
    paths = {name: data_dir / f"{name}.yaml"
             for name in ("phases", "themes", "tasks", "glossary", "model_words", "project", "model")}
    municipalities = _load_municipalities(data_dir)
    phases_file = _validate(PhasesFile, _read_yaml(paths["phases"]), paths["phases"])
    themes_file = _validate(ThemesFile, _read_yaml(paths["themes"]), paths["themes"])
    phases, themes = phases_file.phases, themes_file.themes
    tasks_file = _validate(TasksFile, _read_yaml(paths["tasks"]), paths["tasks"])
    tasks = [_with_sources(t, tasks_file.sources.title, tasks_file.sources.details) for t in tasks_file.tasks]
    terms = _validate(GlossaryFile, _read_yaml(paths["glossary"]), paths["glossary"]).terms
    model_words = _validate(ModelWordsFile, _read_yaml(paths["model_words"]), paths["model_words"]).words
    project = _validate(ProjectFile, _read_yaml(paths["project"]), paths["project"]).project
    # A task the project file adds is as much the project's as the file is: a KOMBIT project's, or our draft.
    own = project.source
    project = project.model_copy(update={"add_tasks": [_with_sources(t, own, own) for t in project.add_tasks]})
    model = _validate(ModelFile, _read_yaml(paths["model"]), paths["model"]).model

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
            for field, source in (("source", task.source), ("details_source", task.details_source)):
                _require(source is None or source.kind != "local", path, f"{where}[{i}] (id={task.id}).{field}",
                         "'local' is for a municipality's own task, typed in chat")
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
    for milestone in MILESTONE_ORDER:  # the nudges look up every milestone a municipality sets
        _require(milestone in project.phase_due, paths["project"], "project.phase_due", f"'{milestone}' is missing")
    for name, number in project.phase_due.items():
        _require(1 <= number <= len(phases), paths["project"], f"project.phase_due.{name}", "no such phase")
    for number, weeks in project.phase_durations_weeks.items():
        field = f"project.phase_durations_weeks.{number}"
        _require(1 <= number <= len(phases), paths["project"], field, "no such phase")
        _require(weeks is None or weeks > 0, paths["project"], field, "weeks must be a positive number or null")
    for task in effective:
        problem = _due_contradicts(task, project.phase_due)
        path, where = (paths["project"], "project.add_tasks") if task.id in added else (paths["tasks"], "tasks")
        _require(problem is None, path, f"{where} (id={task.id}).due", problem or "")
    try:
        ZoneInfo(project.nudges.window.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ContentError(f"{paths['project']}: project.nudges.window.timezone: unknown time zone") from None

    _check_unique(terms, lambda t: t.id, paths["glossary"], "terms")
    for i, term in enumerate(terms):
        _require(term.used_in is None, paths["glossary"], f"terms[{i}] (id={term.id}).used_in",
                 "the glossary holds what the model defines; a word it only uses goes in model_words.yaml")
        _require(term.source is None or term.source.kind == "model", paths["glossary"], f"terms[{i}] (id={term.id}).source",
                 "a definition in the glossary is the model's (kind: model); an explanation of ours goes in model_words.yaml")
    seen_model_tasks = {t.id for t in tasks}
    for i, word in enumerate(model_words):
        field = f"words[{i}] (id={word.id})"
        used = word.used_in
        if used is None:
            raise ContentError(f"{paths['model_words']}: {field}.used_in: say where the model uses the word; "
                               "a definition from the model goes in glossary.yaml")
        _require(word.id not in {t.id for t in terms}, paths["model_words"], f"{field}.id", "already a glossary term")
        for task_id in used.tasks:
            # The model's own examples only: a task the project adds is not where the model uses a word.
            _require(task_id in seen_model_tasks, paths["model_words"], f"{field}.used_in.tasks",
                     f"unknown task '{task_id}' (not one of the model's in tasks.yaml)")
        for theme_id in used.themes:
            _require(theme_id in theme_ids, paths["model_words"], f"{field}.used_in.themes", f"unknown theme '{theme_id}'")
        for number in used.phases:
            _require(1 <= number <= len(phases), paths["model_words"], f"{field}.used_in.phases", f"no phase {number}")
        _require(bool(used.tasks or used.themes or used.phases or used.parts), paths["model_words"],
                 f"{field}.used_in", "name at least one place in the model")
    _check_unique(model_words, lambda t: t.id, paths["model_words"], "words")
    term_ids = {t.id for t in [*terms, *model_words]}
    for file, listed_as, entries in ((paths["glossary"], "terms", terms), (paths["model_words"], "words", model_words)):
        for i, entry in enumerate(entries):
            for rel in entry.related:
                _require(rel in term_ids, file, f"{listed_as}[{i}] (id={entry.id}).related", f"unknown term '{rel}'")
    terms = [*terms, *model_words]

    intents = _load_intents(root / "intents.yaml")
    sentences, words, examples, training = {}, {}, {}, {}
    for lang in LANGUAGES:
        folder = root / "sentences" / lang
        words[lang] = _load_words(folder / "words.yaml", lang, intents)
        sentences[lang] = _load_templates(folder / "templates.yaml", lang, intents, words[lang])
        examples[lang] = _load_examples(folder / "examples.yaml", lang, intents)
        training[lang] = _load_training(folder / "training.yaml", lang, intents)

    return Content(
        phases=phases, themes=themes, tasks=effective, terms=terms, municipalities=municipalities,
        project=project, sentences=sentences, intents=intents, words=words, examples=examples,
        training=training, model=model, phases_source=phases_file.overview_source,
        themes_source=themes_file.overview_source, excluded_tasks=[t for t in tasks if t.id in set(project.exclude_tasks)],
    )


def _load_intents(path: Path) -> dict[str, IntentSpec]:
    intents = {name: spec.model_copy(update={"name": name})
               for name, spec in _validate(IntentsFile, _read_yaml(path), path).intents.items()}
    _require("unknown" in intents, path, "intents", "'unknown' (the answer to what is not understood) is missing")
    for name, spec in intents.items():
        _require(spec.help is None or (spec.help == "consultant") == spec.consultant, path, f"intents.{name}.help",
                 "consultant-only intents, and only they, are listed under 'consultant'")
        for slot in [*spec.defaults, *spec.free_text]:
            _require(slot in spec.slots, path, f"intents.{name}", f"'{slot}' has a default or is free text but is no slot")
        if spec.changes:
            _require(spec.asked == "confirm" or (spec.asked in intents and not intents[spec.asked].changes),
                     path, f"intents.{name}.asked", "must be 'confirm' or an intent that changes nothing")
        else:  # "ja?": an answer asked as a question has a read-only twin too
            _require(spec.asked is None or (spec.asked in intents and not intents[spec.asked].changes),
                     path, f"intents.{name}.asked", "must be an intent that changes nothing")
    return intents


def _load_words(path: Path, lang: str, intents: dict[str, IntentSpec]) -> WordsFile:
    words = _validate(WordsFile, _read_yaml(path), path)
    _require(words.language == lang, path, "language", f"expected '{lang}'")
    for name in words.cues:
        _require(name in intents and intents[name].changes, path, f"cues.{name}", "not an intent that changes data")
    for name in words.anchors:
        _require(name in intents, path, f"anchors.{name}", "not an intent in content/intents.yaml")
    return words


# Slots whose values the templates take from words.yaml (one place for them): list name -> words field.
_FIXED_LISTS = {"milestone": "milestones", "aspect": "aspects", "language": "languages", "sort": "sort",
                "period": "periods"}
_SLOT_IN_TEMPLATE = re.compile(r"\{(\w+)(?::\w+)?\}")


def _alternatives(phrases: list[str]) -> str:
    return "(" + "|".join(p.replace("(", "").replace(")", "") for p in phrases) + ")"


def _load_templates(path: Path, lang: str, intents: dict[str, IntentSpec], words: WordsFile) -> dict[str, Any]:
    data = _read_yaml(path)
    if not (isinstance(data, dict) and isinstance(data.get("intents"), dict)):
        raise ContentError(f"{path}: intents: must be a mapping")
    _require(data.get("language") == lang, path, "language", f"expected '{lang}'")
    lists = dict(data.get("lists") or {})
    for list_name, field_name in _FIXED_LISTS.items():
        values = getattr(words, field_name)
        lists[list_name] = {"values": [{"in": _alternatives(v), "out": k} for k, v in values.items()]}
    for name, intent in data["intents"].items():
        _require(name in intents, path, f"intents.{name}", "not declared in content/intents.yaml")
        declared = set(intents[name].slots)
        for i, block in enumerate((intent or {}).get("data") or []):
            used = {slot for text in block.get("sentences") or [] for slot in _SLOT_IN_TEMPLATE.findall(text)}
            used |= set(block.get("slots") or {})
            for slot in sorted(used - declared):
                _require(False, path, f"intents.{name}.data[{i}]", f"slot '{slot}' is not declared for '{name}'")
    return {**data, "lists": lists}


def _load_training(path: Path, lang: str, intents: dict[str, IntentSpec]) -> TrainingFile:
    training = _validate(TrainingFile, _read_yaml(path), path)
    _require(training.language == lang, path, "language", f"expected '{lang}'")
    for name in training.intents:
        _require(name in intents, path, f"intents.{name}", "not declared in content/intents.yaml")
    return training


def _load_examples(path: Path, lang: str, intents: dict[str, IntentSpec]) -> ExamplesFile:
    examples = _validate(ExamplesFile, _read_yaml(path), path)
    _require(examples.language == lang, path, "language", f"expected '{lang}'")
    for name in examples.intents:
        _require(name in intents, path, f"intents.{name}", "not declared in content/intents.yaml")
    for name, spec in intents.items():
        _require(name in examples.intents, path, f"intents.{name}", "has no examples")
        given = examples.intents[name]
        if spec.changes:
            _require(len(given.not_) >= 3, path, f"intents.{name}.not",
                     "an intent that changes data needs at least 3 negative examples")
        for i, example in enumerate(given.all()):
            extra = set(example.slots) - set(spec.slots)
            _require(not extra, path, f"intents.{name}.examples[{i}]", f"slot '{min(extra, default='')}' is not declared")
    return examples
