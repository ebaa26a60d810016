"""Everything a dialog needs for one turn: content, words, store, who and where, and the answer language."""
from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, format_timedelta
from babel.lists import format_list

from content import Content, Municipality
from content.catalogs import Catalogs
from dialogs.markdown import esc
from dialogs.store import Actor, Store, ThreadContext
from dialogs.turn import Reply, TurnInput
from dialogs.understanding import Understander, Understanding

# Naming the same task again within this long writes nothing; "den" may then count as older by at most this.
_RENAMED = timedelta(minutes=5)

COPENHAGEN = ZoneInfo("Europe/Copenhagen")
FORGOTTEN_PREFIX = "forgotten-"  # actor ids replaced by `python -m bot admin forget-user`


@dataclass
class Services:
    """Built once at start-up and shared by every turn."""

    content: Content
    catalogs: Catalogs
    store: Store
    understander: Understander


async def _no_dispatch(u: Understanding) -> Reply:
    raise RuntimeError("Ctx.dispatch is set by the Assistant that made the context; this one was made without")


@dataclass
class Ctx:
    services: Services
    turn: TurnInput
    lang: str
    consultant: bool = False  # KOMBIT's implementation consultants see every municipality
    _code: str | None = field(default=None, init=False)
    _looked_up: bool = field(default=False, init=False)
    refused_code: str | None = field(default=None, init=False)  # registered here, but owned by another tenant
    _thread: ThreadContext | None = field(default=None, init=False)
    # Answers an understanding as if the user had said it: what a "ja" confirms, what a button stands for.
    # Set by the Assistant that made the context.
    dispatch: Callable[[Understanding], Awaitable[Reply]] = field(default_factory=lambda: _no_dispatch, init=False)

    @property
    def content(self) -> Content:
        return self.services.content

    @property
    def store(self) -> Store:
        return self.services.store

    def t(self, msgid: str, **values: object) -> str:
        return self.services.catalogs.text(self.lang, msgid, **values)

    def tn(self, msgid: str, count: int, **values: object) -> str:
        """A string with a count in it: the catalog's plural form for `count` ("én åben opgave", "3 åbne
        opgaver"), or "<msgid>.zero" for 0 where the catalog has one, as that is another sentence ("alt er udført")."""
        catalogs = self.services.catalogs
        if count == 0 and catalogs.has(f"{msgid}.zero"):
            return catalogs.text(self.lang, f"{msgid}.zero", count=count, **values)
        return catalogs.ngettext(self.lang, msgid, count, **values)

    def progress(self, done: int, total: int) -> str:
        """"3 af 5 opgaver" / "0 af 1 opgave"."""
        return self.tn("word.done_of", total, done=done)

    def date(self, value: dt.date) -> str:
        return self.services.catalogs.date(self.lang, value)

    def today(self) -> dt.date:
        """Today in Denmark: a date typed at 00:30 means the Danish calendar, not UTC's."""
        return self.turn.now.astimezone(COPENHAGEN).date()

    def until(self, day: dt.date) -> str:
        """"om 3 uger" / "in 3 weeks" / "i dag"."""
        days = (day - self.today()).days
        if days in (0, 1):
            return self.t("word.today" if days == 0 else "word.tomorrow")
        return format_timedelta(timedelta(days=days), add_direction=True, threshold=1.5, granularity="day",
                                locale=self.lang)

    def when(self, iso: str) -> str:
        """A stored UTC timestamp in Danish local time: "27. nov. 2026 kl. 10.15" / "27 Nov 2026, 10:15"."""
        moment = datetime.fromisoformat(iso).astimezone(COPENHAGEN)
        if self.lang == "da":
            return format_datetime(moment, "d. MMM y 'kl.' HH.mm", locale="da_DK")
        return format_datetime(moment, "d MMM y, HH:mm", locale="en_GB")

    def either(self, items: list[str]) -> str:
        """«a», «b» eller «c» / «a», «b» or «c»."""
        return format_list([f"«{i}»" for i in items], style="or", locale=self.lang)

    def phase_options(self) -> str:
        """«1 Opstart», «2 Forberedelse», «3 Ibrugtagning» eller «4 Forankring»: for "which phase?" answers."""
        return self.either([f"{p.number} {p.name.get(self.lang)}" for p in self.content.phases])

    def all_of(self, items: list[str]) -> str:
        return format_list(items, locale=self.lang)

    async def municipality_code(self) -> str | None:
        """The conversation's own registration; in a personal chat, the tenant's only municipality.

        A municipality belongs to the tenant that registered it: a conversation from any other tenant
        gets None here (and `refused_code` set), so no dialog can read or change its data."""
        if not self._looked_up:
            self._looked_up = True
            conv = self.turn.conversation
            registration = await self.store.registration(conv.scope)
            code = registration.code if registration else None
            if code is None and conv.kind == "personal" and conv.tenant_id:
                codes = await self.store.codes_for_tenant(conv.tenant_id)
                code = codes[0] if len(codes) == 1 else None
            if code is not None:
                owner = (await self.store.municipality(code)).tenant_id
                if owner and owner != conv.tenant_id:
                    self.refused_code, code = code, None
            self._code = code
        return self._code

    def list_key(self) -> str:
        """Where "udført 3" looks up number 3: the thread the list was shown in (two threads, two lists)."""
        return self.turn.conversation.thread or self.turn.conversation.id

    async def thread(self) -> ThreadContext:
        """What this thread's messages may refer to (read once per turn)."""
        if self._thread is None:
            self._thread = await self.store.thread(self.list_key())
        return self._thread

    async def update_thread(self, **changes: Any) -> None:
        await self.store.update_thread(self.list_key(), **changes)
        self._thread = None

    async def take_pending(self, asked: str | None = None) -> dict[str, Any] | None:
        """This person's open question here, cleared in the same write (see Store.take_pending)."""
        taken = await self.store.take_pending(self.list_key(), self.turn.user.id, self.turn.now, asked)
        self._thread = None
        return taken

    async def remember_task(self, task_id: str) -> None:
        """The task a later "den"/"it" means."""
        thread = await self.thread()
        if thread.last_task == task_id and thread.last_task_by == self.turn.user.id and thread.last_task_at and \
                self.turn.now - datetime.fromisoformat(thread.last_task_at) < _RENAMED:
            return  # the same task by the same person a moment ago: nothing new to write
        await self.update_thread(last_task=task_id, last_task_by=self.turn.user.id,
                                 last_task_at=self.turn.now.isoformat(timespec="minutes"))

    def forget_lookup(self) -> None:
        self._looked_up, self._code, self.refused_code = False, None, None

    def who(self, actor: Actor) -> str:
        """A person's name as shown in replies: escaped, or a neutral word after a GDPR erasure."""
        if actor.id.startswith(FORGOTTEN_PREFIX):
            return self.t("person.forgotten")
        return esc(actor.name or "?")

    def municipality_name(self, code: str) -> str:
        return official_name(self.content.known_municipality(code))


def official_name(m: Municipality) -> str:
    """"Københavns Kommune", "Bornholms Regionskommune", else "<navn> Kommune"."""
    for alias in m.aliases:
        if alias.endswith(("Kommune", "Regionskommune")) and alias.split()[0].rstrip("s") == m.name.rstrip("s"):
            return alias
    return f"{m.name} Kommune"
