"""The Babel catalogs: every message id the dialogs use exists in Danish and English with the placeholders
the code passes, a broken locale dir stops start-up naming the file and the msgid, and dates are spelt
the Danish and British way."""
from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from content import ContentError, load_content
from content.catalogs import Catalogs
from content.loader import CONTENT_ROOT
from dialogs.events import KINDS as EVENT_KINDS
from dialogs.phase_info import ASPECTS
from dialogs.smalltalk import KINDS

DIALOGS = Path(__file__).resolve().parents[2] / "dialogs"
AUDIT_ACTIONS = tuple(k.action for k in EVENT_KINDS.values() if k.shown)  # the kinds of change history shows
INTENTS = load_content().intents
CATALOG_KEYS = Catalogs().keys()
# f-string message ids in the dialogs -> the values their one placeholder takes.
DYNAMIC = {
    "help.what.": tuple(name for name, spec in INTENTS.items() if spec.help),
    "say.": tuple(name for name in INTENTS if name not in ("unknown", "yes", "no", "gate_check")),
    "ask.": tuple(sorted({slot for spec in INTENTS.values() for slot in spec.required})),
    "confirm.": ("mark_done", "reopen", "remove_local"),
    "smalltalk.": KINDS,
    "history.none.": ("today", "yesterday", "week"),
    "history.header.": ("today", "yesterday", "week"),
    "phase.": ASPECTS,
    "history.": AUDIT_ACTIONS,
    "assign.role.": ("responsible", "performer"),
    "assign.done.": ("responsible", "performer"),
    "details.": ("description", "prerequisites", "result", "responsible"),
    "details.kind.": ("model", "project", "draft", "local"),
    "help.section.": ("progress", "tasks", "model", "conversation", "consultant"),
    "milestone.in_text.": ("idriftsaettelsesdato", "go-live"),
    "source.": ("draft", "local"),
}


@dataclass(frozen=True)
class Use:
    msgid: str
    where: str  # file:line
    values: frozenset[str]  # keyword arguments passed with it


def _keys_of(node: ast.AST, scope: ast.AST, where: str) -> list[str]:
    """The msgids an expression passed to ctx.t(...) can evaluate to."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _keys_of(node.body, scope, where) + _keys_of(node.orelse, scope, where)
    if isinstance(node, ast.JoinedStr):
        parts = node.values
        assert len(parts) in (2, 3) and isinstance(parts[0], ast.Constant) and isinstance(parts[1], ast.FormattedValue) \
            and (len(parts) == 2 or isinstance(parts[2], ast.Constant)), f"{where}: unexpected f-string msgid {ast.unparse(node)}"
        prefix = parts[0].value
        assert prefix in DYNAMIC, f"{where}: new dynamic msgid {ast.unparse(node)}: add its value set to DYNAMIC"
        if len(parts) == 3:  # "say.{intent}.with": the code looks it up only where the catalog has it
            return [prefix + v + parts[2].value for v in DYNAMIC[prefix] if prefix + v + parts[2].value in CATALOG_KEYS]
        return [prefix + v for v in DYNAMIC[prefix]]
    if isinstance(node, ast.Name):
        assigned = [a.value for a in ast.walk(scope) if isinstance(a, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == node.id for t in a.targets)]
        assert assigned, f"{where}: msgid variable {node.id} is never assigned"
        return [k for value in assigned for k in _keys_of(value, scope, where)]
    raise AssertionError(f"{where}: cannot tell which msgid {ast.unparse(node)} is")


def _uses() -> list[Use]:
    uses = []
    for path in sorted(DIALOGS.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for function in functions:
            for call in ast.walk(function):
                # ctx.t(msgid, ...) in dialogs; self._t(lang, msgid, ...) where no turn exists (nudges);
                # ctx.tn(msgid, count, ...) for a string with a number: a plural entry (and msgid.zero).
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and call.func.attr in ("t", "_t", "tn", "_tn") and isinstance(call.func.value, ast.Name)
                        and call.func.value.id in ("ctx", "self")):
                    continue
                where = f"{path.name}:{call.lineno}"
                if call.func.attr in ("_t", "_tn"):  # the language comes first where no turn exists
                    call = ast.Call(func=call.func, args=call.args[1:], keywords=call.keywords)
                assert call.args, f"{where}: ctx.t() without a msgid"
                assert all(k.arg for k in call.keywords), f"{where}: ctx.t(**...) hides the placeholders"
                values = frozenset(k.arg for k in call.keywords)
                keys = _keys_of(call.args[0], function, where)
                if call.func.attr in ("tn", "_tn"):
                    values |= {"count"}
                    keys = [*keys, *(f"{k}.zero" for k in keys if f"{k}.zero" in CATALOG_KEYS)]
                uses += [Use(k, where, values) for k in keys]
    # Several nested functions see the same call; keep one of each.
    return sorted(set(uses), key=lambda u: (u.where, u.msgid))


USES = _uses()


@pytest.fixture(scope="module")
def catalogs() -> Catalogs:
    return Catalogs()


def test_catalogs_load_with_the_same_keys_in_both_languages(catalogs):
    assert len(catalogs.keys()) > 50
    assert catalogs.text("da", "register.how").startswith("Skriv")
    assert catalogs.text("en", "register.how").startswith("Type")


def test_the_scan_found_the_dialogs_msgids():
    msgids = {u.msgid for u in USES}
    # Sanity: the static, conditional, variable and f-string forms are all picked up.
    assert {"register.done", "register.done.team", "status.row.current", "greet.registered", "history.none.task",
            "say.set_language", "help.what.register", "phase.criteria", "history.reopen", "count.all",
            "count.all.zero", "ask.task", "confirm.assign"} <= msgids
    assert len(msgids) > 60


@pytest.mark.parametrize("lang", ["da", "en"])
def test_every_msgid_used_in_dialogs_is_translated(catalogs, lang):
    path = CONTENT_ROOT / "locale" / lang / "LC_MESSAGES" / "messages.po"
    missing = sorted({f"{u.msgid} ({u.where})" for u in USES if not catalogs.has(u.msgid)})
    assert not missing, f"{path}: no msgid for {missing}"
    for use in USES:
        if use.msgid in catalogs.plural_keys():
            forms = [catalogs.ngettext(lang, use.msgid, n, **{v: "x" for v in use.values - {"count"}}) for n in (1, 2)]
            assert all(forms) and forms[0] != forms[1], use  # a plural entry whose forms differ
        else:
            text = catalogs.text(lang, use.msgid)
            assert text and text != use.msgid, use


@pytest.mark.parametrize("lang", ["da", "en"])
def test_every_placeholder_is_passed_by_the_code(catalogs, lang):
    for use in USES:
        needed = catalogs.placeholders(lang, use.msgid)
        assert needed <= use.values, f"{use.where}: {lang} '{use.msgid}' needs {sorted(needed - use.values)}"
        if use.msgid in catalogs.plural_keys():
            assert use.msgid.rsplit(".", 1)[-1] != "zero"
            for n in (0, 1, 2):  # formats without error
                catalogs.ngettext(lang, use.msgid, n, **{v: "x" for v in use.values - {"count"}})
        elif use.values:
            catalogs.text(lang, use.msgid, **{v: "x" for v in use.values})  # formats without error


# -- broken locale dirs -------------------------------------------------------------------------------


@pytest.fixture
def locale(tmp_path) -> Path:
    copy = tmp_path / "locale"
    shutil.copytree(CONTENT_ROOT / "locale", copy)
    return copy


def _po(locale: Path, lang: str) -> Path:
    return locale / lang / "LC_MESSAGES" / "messages.po"


def _drop_entry(path: Path, msgid: str) -> None:
    text = path.read_text(encoding="utf-8")
    start = text.index(f'msgid "{msgid}"')
    end = text.find("\nmsgid ", start) + 1 or len(text)
    path.write_text(text[:start] + text[end:], encoding="utf-8")


def test_copied_locale_dir_loads(locale):
    assert Catalogs(locale).keys() == Catalogs().keys()


def test_missing_english_msgid_names_file_and_msgid(locale):
    path = _po(locale, "en")
    _drop_entry(path, "register.next")
    with pytest.raises(ContentError) as info:
        Catalogs(locale)
    message = str(info.value)
    assert str(path) in message
    assert "register.next" in message


def test_missing_danish_msgid_names_the_danish_file(locale):
    path = _po(locale, "da")
    _drop_entry(path, "status.hint")
    with pytest.raises(ContentError) as info:
        Catalogs(locale)
    assert str(path) in str(info.value) and "status.hint" in str(info.value)


def test_placeholder_mismatch_names_file_and_msgid(locale):
    path = _po(locale, "en")
    text = path.read_text(encoding="utf-8")
    old = 'msgstr "This conversation is already linked to **{name}**."'
    assert old in text
    path.write_text(text.replace(old, old.replace("{name}", "{navn}")), encoding="utf-8")
    assert "{name}" in Catalogs().text("da", "register.already")
    with pytest.raises(ContentError) as info:
        Catalogs(locale)
    message = str(info.value)
    assert str(path) in message
    assert "register.already" in message
    assert "placeholder" in message


def test_empty_translation_names_file_and_msgid(locale):
    path = _po(locale, "da")
    text = path.read_text(encoding="utf-8")
    old = 'msgid "register.switched"\nmsgstr "Tilknytningen til {previous} er erstattet."'
    assert old in text
    path.write_text(text.replace(old, 'msgid "register.switched"\nmsgstr ""'), encoding="utf-8")
    with pytest.raises(ContentError) as info:
        Catalogs(locale)
    assert str(path) in str(info.value) and "register.switched" in str(info.value)


def test_missing_po_file_is_named(locale):
    path = _po(locale, "en")
    path.unlink()
    with pytest.raises(ContentError) as info:
        Catalogs(locale)
    assert str(path) in str(info.value) and "missing" in str(info.value)


def test_fuzzy_entry_is_not_silently_shown_as_its_msgid(locale):
    path = _po(locale, "en")
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('msgid "register.next"', '#, fuzzy\nmsgid "register.next"'), encoding="utf-8")
    try:
        catalogs = Catalogs(locale)
    except ContentError as exc:  # refusing the file is fine too
        assert str(path) in str(exc) and "register.next" in str(exc)
        return
    assert catalogs.text("en", "register.next") != "register.next"


# -- dates --------------------------------------------------------------------------------------------


def test_dates_in_danish_and_english(catalogs):
    assert catalogs.date("da", date(2027, 3, 1)) == "1. marts 2027"
    assert catalogs.date("en", date(2027, 3, 1)) == "1 March 2027"
    assert catalogs.date("da", date(2026, 11, 27)) == "27. november 2026"


def test_no_catalog_entry_is_dead(catalogs):
    unused = sorted(catalogs.keys() - {u.msgid for u in USES})
    assert not unused, f"msgids no dialog uses: {unused}"


# -- plural forms ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang, expected", [
    ("da", {0: "0 af 0 opgaver", 1: "0 af 1 opgave", 2: "0 af 2 opgaver"}),
    ("en", {0: "0 of 0 tasks", 1: "0 of 1 task", 2: "0 of 2 tasks"}),
])
def test_counts_take_the_catalogs_plural_form(catalogs, lang, expected):
    assert {n: catalogs.ngettext(lang, "word.done_of", n, done=0) for n in (0, 1, 2)} == expected


@pytest.mark.parametrize("lang", ["da", "en"])
def test_every_plural_entry_differs_between_one_and_two_and_formats_at_0_1_2(catalogs, lang):
    for msgid in catalogs.plural_keys():
        values = {name: "x" for name in catalogs.placeholders(lang, msgid) - {"count"}}
        one, two = (catalogs.ngettext(lang, msgid, n, **values) for n in (1, 2))
        assert one != two, msgid
        if "count" in catalogs.placeholders(lang, msgid):  # a form that shows the count shows the right one
            assert "2" in two and "1" not in two, (msgid, two)
        catalogs.ngettext(lang, msgid, 0, **values)


def test_a_plural_entry_is_not_read_as_a_plain_string(catalogs):
    with pytest.raises(KeyError):
        catalogs.text("da", "word.done_of")


def test_a_plural_entry_with_too_few_forms_names_file_and_msgid(locale):
    path = _po(locale, "en")
    text = path.read_text(encoding="utf-8")
    start = text.index('msgid "word.done_of"')
    cut = text.index("msgstr[1]", start)
    end = text.index("\n", cut) + 1
    path.write_text(text[:cut] + text[end:], encoding="utf-8")
    with pytest.raises(ContentError) as info:
        Catalogs(locale)
    assert str(path) in str(info.value) and "word.done_of" in str(info.value) and "plural" in str(info.value)


def test_a_plural_entry_in_one_language_only_names_the_other(locale):
    path = _po(locale, "en")
    _drop_entry(path, "themes.header")
    path.write_text(path.read_text(encoding="utf-8") + '\nmsgid "themes.header"\nmsgstr "Themes"\n', encoding="utf-8")
    with pytest.raises(ContentError) as info:
        Catalogs(locale)
    assert str(path) in str(info.value) and "themes.header" in str(info.value)
