"""Expected wording for tests, from the message catalogs (content/locale/{da,en}/LC_MESSAGES/messages.po).

A test never copies a sentence the bot says: it asks the catalogs for it, as the product does, so a copy-edit
of a .po file is one edit. Where a test must read numbers back out of a reply (a status row, a portfolio line),
`rx` turns the catalog's own template into a regex with a named group per placeholder, and the parsers below
re-render what they read through the catalog, so a wrong plural form or a changed word still fails.

    t("da", "mark.done", task="Udpeg projektleder", who="Mette Hansen")
    tn("da", "gate.open_tasks", 5, source=1, source_name="Opstart")   # the plural form for 5
    progress("da", 2, 6)                                             # "2 af 6 opgaver" (word.done_of)
    re.search(rx("da", "status.total", progress=rx("da", "word.done_of")), text)
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass

from content.catalogs import Catalogs

CATALOGS = Catalogs()

# Placeholders that always hold a whole number: their groups match digits only.
NUMERIC = frozenset({"number", "done", "count", "total", "pct", "source", "target", "last", "weeks"})
_FIELDS = string.Formatter()
_SUFFIX = "__"  # a plural form's groups are named "<placeholder>__<msgid>__<form>" ("done__word_done_of__1")


def t(lang: str, msgid: str, **values: object) -> str:
    """A singular catalog message, formatted. An unknown msgid fails here (the product would show the bare key)."""
    assert CATALOGS.has(msgid), f"no msgid '{msgid}' in the catalogs"
    return CATALOGS.text(lang, msgid, **values)


def tn(lang: str, msgid: str, count: int, **values: object) -> str:
    """A plural entry: the form the language's Plural-Forms picks for `count`, {count} filled."""
    return CATALOGS.ngettext(lang, msgid, count, **values)


def counted(lang: str, msgid: str, count: int, **values: object) -> str:
    """As the product words a count that has its own sentence for none: "<msgid>.zero" for 0 where the catalog
    has one ("alt på jeres liste er udført"), else the plural entry."""
    if count == 0 and CATALOGS.has(f"{msgid}.zero"):
        return t(lang, f"{msgid}.zero", count=count, **values)
    return tn(lang, msgid, count, **values)


def wrong_forms(lang: str, msgid: str, count: int, **values: object) -> list[str]:
    """What the plural entry would say for `count` in each form the catalog does not pick for it ("1 undtagelser"):
    for tests that a count is worded in its own form."""
    keep = {name: "{" + name + "}" for name in CATALOGS.placeholders(lang, msgid) - {"count"}}
    right = CATALOGS.ngettext(lang, msgid, _Sentinel(count), **keep)
    return [form.format(count=count, **values) for form in _raw_forms(lang, msgid) if form != right]


def progress(lang: str, done: int, total: int) -> str:
    """"3 af 5 opgaver" / "0 of 1 task": the plural phrase word.done_of, governed by the total."""
    return tn(lang, "word.done_of", total, done=done)


def cited(lang: str, *sources: dict) -> str:
    """Whose words a reply's content is, as the reply says under it, for sources as content/data/*.yaml writes
    them ({kind, part}): the model's parts once each, in order, under source.label ("Kilde: Implementeringsmodellen
    2.0 – Temaer (1/2); Centrale begreber"), then a draft's or the municipality's own ("Udkast – ikke KOMBITs
    tekst"). A KOMBIT project's source needs the project's name: not handled here."""
    assert all(source["kind"] in ("model", "draft", "local") for source in sources), sources
    parts = list(dict.fromkeys(source["part"][lang] for source in sources if source["kind"] == "model"))
    out = [t(lang, "source.label", source=t(lang, "source.model", part="; ".join(parts)))] if parts else []
    out += [t(lang, f"source.{source['kind']}") for source in sources if source["kind"] != "model"]
    return " · ".join(dict.fromkeys(out))


def source_line(lang: str, *sources: dict) -> str:
    """The same as the italic line a text reply ends with."""
    return f"_{cited(lang, *sources)}_"


def prefix(lang: str, msgid: str) -> str:
    """The fixed start of a message, up to its first placeholder ("Det forstod jeg ikke. Prøv fx "); of a plural
    entry, of the form for 0."""
    return _raw_forms(lang, msgid)[0].split("{", 1)[0]


def suffix(lang: str, msgid: str) -> str:
    """The fixed end of a message, after its last placeholder (" – eller skriv «hjælp».")."""
    return _raw_forms(lang, msgid)[0].rsplit("}", 1)[-1]


# -- catalog templates as regexes ------------------------------------------------------------------------------
class Rx(str):
    """A regex fragment, put into a pattern as it is (not escaped): a nested template, or a group of one's own."""


class _Sentinel(int):
    """A count that picks a plural form but formats as the placeholder itself: the raw template of that form."""

    def __format__(self, spec: str) -> str:
        return "{count}"


def _raw_forms(lang: str, msgid: str) -> list[str]:
    """The message's raw template(s), placeholders unfilled: one for a singular message, each form of a
    plural entry (in the order the counts 0, 1, 2, … first pick them)."""
    if msgid not in CATALOGS.plural_keys():
        return [CATALOGS.text(lang, msgid)]
    keep = {name: "{" + name + "}" for name in CATALOGS.placeholders(lang, msgid) - {"count"}}
    forms: list[str] = []
    for n in range(0, 200):  # enough for any Plural-Forms rule to show each of its forms
        form = CATALOGS.ngettext(lang, msgid, _Sentinel(n), **keep)
        if form not in forms:
            forms.append(form)
    return forms


def _form_regex(form: str, values: dict[str, object], tag: str) -> str:
    out, seen = [], set()
    for literal, name, _, _ in _FIELDS.parse(form):
        out.append(re.escape(literal))
        if name is None:
            continue
        if name in values:
            value = values[name]
            if isinstance(value, Rx):  # its own groups, renamed per form so the alternatives do not clash
                out.append(re.sub(r"\(\?P([<=])(\w+)", lambda m: f"(?P{m[1]}{m[2]}{tag}", value) if tag else value)
            else:
                out.append(re.escape(str(value)))
        elif name in seen:
            out.append(f"(?P={name}{tag})")
        else:
            seen.add(name)
            group = r"-?\d+" if name in NUMERIC else ".+?"
            out.append(f"(?P<{name}{tag}>{group})")
    return "".join(out)


def rx(lang: str, msgid: str, /, **values: object) -> Rx:
    """The catalog message as a regex: a placeholder given in `values` is that text (escaped), or an `Rx` as
    it is; every other placeholder is a named group (digits for NUMERIC names). A plural entry matches any of
    its forms; read its groups with `fields`, which also merges the groups of nested plural phrases."""
    forms = _raw_forms(lang, msgid)
    if len(forms) == 1:
        return Rx(_form_regex(forms[0], values, ""))
    tag = f"{_SUFFIX}{msgid.replace('.', '_')}{_SUFFIX}"
    forms.sort(key=len, reverse=True)  # "3 af 5 opgaver" is tried before its prefix "3 af 5 opgave"
    return Rx("(?:" + "|".join(_form_regex(form, values, f"{tag}{i}") for i, form in enumerate(forms)) + ")")


def rx_n(lang: str, msgid: str, count: int, /, **values: object) -> Rx:
    """As `rx`, for the one form of a plural entry the catalog picks for `count`, with {count} filled: a reply
    worded in another form does not match."""
    keep = {name: "{" + name + "}" for name in CATALOGS.placeholders(lang, msgid) - {"count"}}
    form = CATALOGS.ngettext(lang, msgid, _Sentinel(count), **keep)
    return Rx(_form_regex(form, {**values, "count": count}, ""))


def fields(match: re.Match | None) -> dict[str, str]:
    """A match's placeholders by name: the groups of whichever plural form matched, under their own names."""
    assert match is not None, "the text does not have the catalog's wording"
    out: dict[str, str] = {}
    for name, value in match.groupdict().items():
        if value is not None:
            out.setdefault(name.split(_SUFFIX, 1)[0], value)
    return out


# -- reading numbers back out of replies ------------------------------------------------------------------------
@dataclass
class Status:
    """A status reply, read through the catalog's templates (status.header, status.row[.current], status.total)."""

    current: int  # the phase the header names
    phases: dict[int, tuple[str, int, int]]  # number -> (phase name, done, total), one per row
    current_row: int | None  # the row marked as the current phase
    total: tuple[int, int]  # (done, total) overall


def status_of(lang: str, text: str, name: str | None = None) -> Status:
    """Parses a status reply; every row and the total line must be exactly what the catalog renders for the
    numbers read (so a wrong plural form fails here too)."""
    header = fields(re.search(rx(lang, "status.header", **({"name": name} if name else {})), text))
    phases, current_row = {}, None
    done_of = rx(lang, "word.done_of")
    for line in text.splitlines():
        if not line.startswith("- "):
            continue
        body = line[2:]
        for key in ("status.row.current", "status.row"):
            found = re.fullmatch(rx(lang, key, progress=done_of), body)
            if found:
                got = fields(found)
                number, done, total = int(got["number"]), int(got["done"]), int(got["count"])
                expected = t(lang, key, number=number, phase=got["phase"], progress=progress(lang, done, total))
                assert body == expected, (body, expected)
                assert number not in phases, f"phase {number} has two rows:\n{text}"
                phases[number] = (got["phase"], done, total)
                if key == "status.row.current":
                    assert current_row is None, f"two current phases:\n{text}"
                    current_row = number
                break
    overall = fields(re.search(rx(lang, "status.total", progress=done_of), text))
    done, total = int(overall["done"]), int(overall["count"])
    assert t(lang, "status.total", progress=progress(lang, done, total)) in text, text
    return Status(int(header["number"]), phases, current_row, (done, total))


def overall_of(lang: str, text: str) -> tuple[int, int]:
    """(done, total) from a status reply's status.total line ("I alt: 3 af 34 opgaver udført.")."""
    found = fields(re.search(rx(lang, "status.total", progress=rx(lang, "word.done_of")), text))
    done, total = int(found["done"]), int(found["count"])
    assert t(lang, "status.total", progress=progress(lang, done, total)) in text, text
    return done, total
