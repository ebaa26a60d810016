"""Babel gettext catalogs (.po) for every user-facing string, read and checked at start-up.

Message ids are stable keys ("status.header"); both `da` and `en` catalogs must translate every key with
the same {placeholders}, or start-up stops naming the file and the key. After those checks every key has a
translation in both languages, so a lookup is a dict lookup: gettext's machinery (fallbacks, plural
forms, .mo compilation) would add nothing but cost, and a turn looks up some 20 strings.
"""
from __future__ import annotations

import string
from datetime import date
from pathlib import Path

from babel.dates import format_date
from babel.messages.pofile import read_po

from content.loader import CONTENT_ROOT, LANGUAGES, ContentError

_FIELDS = string.Formatter()


def _placeholders(text: str) -> set[str]:
    try:
        return {name for _, name, _, _ in _FIELDS.parse(text) if name}
    except ValueError as exc:
        raise ValueError(f"bad placeholder: {exc}") from None


class Catalogs:
    def __init__(self, locale_dir: Path = CONTENT_ROOT / "locale"):
        self._keys: dict[str, dict[str, str]] = {}
        for lang in LANGUAGES:
            path = locale_dir / lang / "LC_MESSAGES" / "messages.po"
            try:
                with path.open("rb") as fh:
                    catalog = read_po(fh, locale=lang)
            except FileNotFoundError:
                raise ContentError(f"{path}: file is missing") from None
            except Exception as exc:  # babel raises several types for a broken .po
                raise ContentError(f"{path}: {exc}") from None
            self._keys[lang] = {}
            for message in catalog:
                if not message.id:
                    continue
                if not message.string:
                    raise ContentError(f"{path}: msgid '{message.id}': msgstr is empty")
                if message.fuzzy:  # gettext would silently drop it and users would see the bare key
                    raise ContentError(f"{path}: msgid '{message.id}': marked fuzzy (unreviewed); review it and remove the flag")
                try:
                    _placeholders(message.string)
                except ValueError as exc:
                    raise ContentError(f"{path}: msgid '{message.id}': {exc}") from None
                self._keys[lang][message.id] = message.string
        self._check_parity(locale_dir)

    def _check_parity(self, locale_dir: Path) -> None:
        da, en = self._keys["da"], self._keys["en"]
        for lang, mine, other in (("da", da, en), ("en", en, da)):
            missing = sorted(set(other) - set(mine))
            if missing:
                raise ContentError(f"{locale_dir / lang / 'LC_MESSAGES/messages.po'}: missing msgid '{missing[0]}'")
        for msgid in da:
            if _placeholders(da[msgid]) != _placeholders(en[msgid]):
                raise ContentError(
                    f"{locale_dir / 'en/LC_MESSAGES/messages.po'}: msgid '{msgid}': placeholders differ from Danish"
                )

    def keys(self) -> set[str]:
        return set(self._keys["da"])

    def placeholders(self, lang: str, msgid: str) -> set[str]:
        return _placeholders(self._keys.get(lang, self._keys["da"]).get(msgid, ""))

    def text(self, lang: str, msgid: str, **values: object) -> str:
        texts = self._keys.get(lang) or self._keys["da"]
        template = texts.get(msgid, msgid)  # an unknown key shows as itself, as gettext would (a test forbids them)
        return template.format(**values) if values else template

    def date(self, lang: str, value: date) -> str:
        """"1. marts 2027" / "1 March 2027"."""
        return format_date(value, format="long", locale="da_DK" if lang == "da" else "en_GB")


