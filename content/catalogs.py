"""Babel gettext catalogs (.po) for every user-facing string, read and checked at start-up.

Message ids are stable keys ("status.header"); both `da` and `en` catalogs must translate every key with
the same {placeholders}, or start-up stops naming the file and the key. A string with a count in it is a
gettext plural entry (msgid + msgid_plural, one msgstr[i] per form); the form is chosen by the catalog's own
`Plural-Forms` expression, as ngettext would. After those checks every key has a translation in both
languages, so a lookup is a dict lookup: .mo compilation and fallback chains would add nothing but cost.
"""
from __future__ import annotations

import gettext
import string
from collections.abc import Callable
from datetime import date
from pathlib import Path

from babel.dates import format_date
from babel.messages.catalog import Message
from babel.messages.pofile import read_po

from content.loader import CONTENT_ROOT, LANGUAGES, ContentError

_FIELDS = string.Formatter()


def _placeholders(text: str) -> set[str]:
    try:
        return {name for _, name, _, _ in _FIELDS.parse(text) if name}
    except ValueError as exc:
        raise ValueError(f"bad placeholder: {exc}") from None


def _key_and_forms(message: Message) -> tuple[str, tuple[str, ...]]:
    """A message's key and its translations: a plural entry's id and string are sequences (its msgid and
    msgid_plural, a msgstr[i] per form), a singular's are one string each. A missing msgstr is empty."""
    if isinstance(message.id, str):
        return message.id, (message.string if isinstance(message.string, str) else "",)
    return message.id[0], tuple(message.string or ())


class Catalogs:
    def __init__(self, locale_dir: Path = CONTENT_ROOT / "locale") -> None:
        self._keys: dict[str, dict[str, str]] = {}
        self._plurals: dict[str, dict[str, tuple[str, ...]]] = {}
        self._plural_form: dict[str, Callable[[int], int]] = {}
        for lang in LANGUAGES:
            path = locale_dir / lang / "LC_MESSAGES" / "messages.po"
            try:
                with path.open("rb") as fh:
                    catalog = read_po(fh, locale=lang)
            except FileNotFoundError:
                raise ContentError(f"{path}: file is missing") from None
            except Exception as exc:  # babel raises several types for a broken .po
                raise ContentError(f"{path}: {exc}") from None
            self._keys[lang], self._plurals[lang] = {}, {}
            try:
                self._plural_form[lang] = gettext.c2py(catalog.plural_expr)
            except ValueError as exc:
                raise ContentError(f"{path}: Plural-Forms: {exc}") from None
            for message in catalog:
                if not message.id:
                    continue
                key, forms = _key_and_forms(message)
                if not all(forms):
                    raise ContentError(f"{path}: msgid '{key}': msgstr is empty")
                if message.fuzzy:  # gettext would silently drop it and users would see the bare key
                    raise ContentError(f"{path}: msgid '{key}': marked fuzzy (unreviewed); review it and remove the flag")
                if message.pluralizable and len(forms) != catalog.num_plurals:
                    raise ContentError(f"{path}: msgid '{key}': {len(forms)} plural forms, Plural-Forms says "
                                       f"{catalog.num_plurals}")
                for form in forms:
                    try:
                        _placeholders(form)
                    except ValueError as exc:
                        raise ContentError(f"{path}: msgid '{key}': {exc}") from None
                if message.pluralizable:
                    self._plurals[lang][key] = forms
                else:
                    self._keys[lang][key] = forms[0]
        self._check_parity(locale_dir)

    def _check_parity(self, locale_dir: Path) -> None:
        for lang, other in (("da", "en"), ("en", "da")):
            path = locale_dir / lang / "LC_MESSAGES/messages.po"
            singular = sorted(set(self._plurals[other]) & set(self._keys[lang]))
            if singular:
                raise ContentError(f"{path}: msgid '{singular[0]}': must be a plural entry (msgid_plural) as in "
                                   f"the {other} catalog")
        for lang, other in (("da", "en"), ("en", "da")):
            path = locale_dir / lang / "LC_MESSAGES/messages.po"
            missing = sorted((set(self._keys[other]) | set(self._plurals[other]))
                             - set(self._keys[lang]) - set(self._plurals[lang]))
            if missing:
                raise ContentError(f"{path}: missing msgid '{missing[0]}'")
        for msgid in [*self._keys["da"], *self._plurals["da"]]:
            if self.placeholders("da", msgid) != self.placeholders("en", msgid):
                raise ContentError(
                    f"{locale_dir / 'en/LC_MESSAGES/messages.po'}: msgid '{msgid}': placeholders differ from Danish"
                )

    def keys(self) -> set[str]:
        """Every msgid, plural entries included."""
        return set(self._keys["da"]) | set(self._plurals["da"])

    def has(self, msgid: str) -> bool:
        return msgid in self._keys["da"] or msgid in self._plurals["da"]

    def plural_keys(self) -> set[str]:
        return set(self._plurals["da"])

    def placeholders(self, lang: str, msgid: str) -> set[str]:
        """A plural entry's placeholders are those of all its forms ("én opgave" may leave out {count})."""
        forms = self._plurals[lang].get(msgid) or (self._keys[lang].get(msgid, ""),)
        return set().union(*(_placeholders(form) for form in forms))

    def text(self, lang: str, msgid: str, **values: object) -> str:
        texts = self._keys.get(lang) or self._keys["da"]
        if msgid in self._plurals["da"]:
            raise KeyError(f"msgid '{msgid}' has plural forms: use ngettext with its count")
        template = texts.get(msgid, msgid)  # an unknown key shows as itself, as gettext would (a test forbids them)
        return template.format(**values) if values else template

    def ngettext(self, lang: str, msgid: str, count: int, **values: object) -> str:
        """The form of a plural entry that the language's Plural-Forms picks for `count`, with {count} filled."""
        lang = lang if lang in self._plurals else "da"
        forms = self._plurals[lang][msgid]
        return forms[min(self._plural_form[lang](count), len(forms) - 1)].format(count=count, **values)

    def date(self, lang: str, value: date) -> str:
        """"1. marts 2027" / "1 March 2027"."""
        return format_date(value, format="long", locale="da_DK" if lang == "da" else "en_GB")


