"""Which proactive messages are due, and their text. Pure: time, state and what was sent come in.

A nudge is identified by a key (municipality, conversation, kind, milestone, offset, date) that is
recorded once sent, so every moment is told exactly once per conversation:
- phase_complete: every task of the current phase is done -> "ready for the transition";
- ahead: N days before a milestone (project.yaml days_before, most specific offset only) -> what is
  still open in the phase due by then;
- overdue: the milestone passed with that phase open -> one notice, then at most one per period;
- wave: a wave's dates changed -> every member conversation is told the new dates.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_timedelta

from content import Content
from content.catalogs import Catalogs
from content.schema import NudgeWindow, Wave
from dialogs.progress import current_phase, is_done, milestones_of, phase_progress, tasks_in
from dialogs.store import ConversationRecord, MunicipalityState

MAX_LISTED = 10  # a nudge names at most this many open tasks; the rest are "and N more"


@dataclass(frozen=True)
class Nudge:
    key: str
    code: str
    conversation: ConversationRecord
    kind: str
    text: str
    wave: str | None = None  # set on wave nudges: the sweep records the wave's dates once all are sent


def in_window(window: NudgeWindow, now: datetime) -> bool:
    local = now.astimezone(ZoneInfo(window.timezone))
    return local.weekday() in window.weekdays and window.start <= local.time() < window.end


def wave_signature(wave: Wave) -> str:
    dates = {name: day.isoformat() for name, day in sorted(wave.milestones.items())}
    return hashlib.sha256(json.dumps(dates).encode()).hexdigest()[:12]


class Planner:
    def __init__(self, content: Content, catalogs: Catalogs):
        self.content = content
        self.catalogs = catalogs

    def _t(self, lang: str, msgid: str, **values: object) -> str:
        return self.catalogs.text(lang, msgid, **values)

    def _tn(self, lang: str, msgid: str, count: int, **values: object) -> str:
        return self.catalogs.ngettext(lang, msgid, count, **values)

    def _open_list(self, lang: str, state: MunicipalityState, phase: int) -> tuple[int, str]:
        open_tasks = [t for t in tasks_in(self.content, state, phase) if not is_done(state, t.id)]
        lines = [f"- {t.title.get(lang)}" for t in open_tasks[:MAX_LISTED]]
        if len(open_tasks) > MAX_LISTED:
            lines.append(self._tn(lang, "nudge.more", len(open_tasks) - MAX_LISTED))
        return len(open_tasks), "\n".join(lines)

    def plan(self, now: datetime, states: dict[str, MunicipalityState], conversations: list[ConversationRecord],
             sent: set[str], changed_waves: dict[str, str]) -> list[Nudge]:
        """Everything due now that was not sent. `changed_waves`: wave id -> new signature to announce."""
        settings = self.content.project.nudges
        today = now.astimezone(ZoneInfo(settings.window.timezone)).date()
        due: list[Nudge] = []
        for record in conversations:
            state = states.get(record.code)
            if state is None:
                continue
            lang, prefix = record.language, f"{record.code}|{record.key}"
            phase = current_phase(self.content, state)
            progress = phase_progress(self.content, state)[phase - 1]
            started_here = bool(state.gate and state.gate.get("conversation") == record.key)  # it has the checklist
            if progress.complete and phase < len(self.content.phases) and not started_here:
                name = self.content.phase(phase).name.get(lang)
                due.append(Nudge(f"{prefix}|phase_complete|{phase}", record.code, record, "phase_complete",
                                 self._t(lang, "nudge.phase_complete", number=phase, phase=name, next=phase + 1)))
            for milestone in milestones_of(self.content, state).values():
                due_phase = self.content.project.phase_due[milestone.name]
                open_count, listing = self._open_list(lang, state, due_phase)
                if not open_count:
                    continue
                days = (milestone.date - today).days
                label = self.content.known_term(milestone.name).term.get(lang)
                date_text = self.catalogs.date(lang, milestone.date)
                phase_name = self.content.phase(due_phase).name.get(lang)
                stamp = milestone.date.isoformat()
                if days >= 0:
                    offsets = [o for o in sorted(settings.days_before) if days <= o]
                    if not offsets:
                        continue
                    left = format_timedelta(timedelta(days=days), add_direction=True, threshold=1.5, locale=lang) \
                        if days else self._t(lang, "word.today")
                    due.append(Nudge(f"{prefix}|ahead|{milestone.name}|{offsets[0]}|{stamp}", record.code, record,
                                     "ahead", self._tn(lang, "nudge.ahead", open_count, milestone=label, date=date_text,
                                                       left=left, number=due_phase, phase=phase_name, tasks=listing)))
                else:
                    period = (-days - 1) // settings.overdue_every_days  # day 1..7 -> 0, day 8..14 -> 1, ...
                    due.append(Nudge(f"{prefix}|overdue|{milestone.name}|{period}|{stamp}", record.code, record,
                                     "overdue", self._tn(lang, "nudge.overdue", open_count, milestone=label,
                                                         date=date_text, number=due_phase, phase=phase_name,
                                                         tasks=listing)))
            wave = self.content.project.wave_of(record.code)
            if wave and wave.id in changed_waves and any(m.wave for m in milestones_of(self.content, state).values()):
                dates = [f"- {self.content.known_term(name).term.get(lang)}: {self.catalogs.date(lang, day)}"
                         for name, day in sorted(wave.milestones.items())]
                due.append(Nudge(f"{prefix}|wave|{wave.id}|0|{changed_waves[wave.id]}", record.code, record, "wave",
                                 self._t(lang, "nudge.wave", wave=wave.name.get(lang), dates="\n".join(dates)),
                                 wave=wave.id))
        return [n for n in due if n.key not in sent]
