"""The conference as data: the TOML/JSON shape organisers write, and the API's output."""

from __future__ import annotations

import datetime as dt
import re
from datetime import datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)

from orchestrator.conferences.models import ConferenceMode, ConferenceStatus, SessionKind

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{1,78}[a-z0-9]$"
# Staff pages live at /admin/<word>; a conference slugged so would be shadowed by them.
RESERVED_SLUGS = frozenset(
    {"new", "mail", "login", "logout", "account", "password", "password-reset"}
)


def _free_slug(value: str) -> str:
    if value in RESERVED_SLUGS:
        raise ValueError(f"„{value}“ ist als Kennung reserviert / “{value}” is reserved")
    return value


KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DURATION = TypeAdapter(timedelta)


def single_line(value: str) -> str:
    """Refuse control characters (CR/LF and friends) in one-line text."""
    if _CONTROL.search(value):
        raise ValueError("darf keine Zeilenumbrüche oder Steuerzeichen enthalten")
    return value.strip()


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unbekannte Zeitzone {value!r}") from None
    if value not in available_timezones():
        raise ValueError(f"unbekannte Zeitzone {value!r}")
    return value


def _duration(value: str) -> str:
    try:
        parsed = _DURATION.validate_python(value)
    except ValueError:
        raise ValueError(f"keine ISO-8601-Dauer: {value!r}") from None
    if not isinstance(value, str) or not value.startswith("P") or parsed <= timedelta(0):
        raise ValueError(f"keine positive ISO-8601-Dauer: {value!r}")
    return value


Line = Annotated[str, StringConstraints(max_length=300), AfterValidator(single_line)]
Key = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
Zone = Annotated[str, AfterValidator(_zone)]
Duration = Annotated[str, AfterValidator(_duration)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ConferenceInfo(_Spec):
    slug: Annotated[str, StringConstraints(pattern=SLUG_PATTERN), AfterValidator(_free_slug)]
    title: Line = Field(min_length=1)
    lead_theme: Line = ""
    organiser: Line = ""
    # German with its article, nominative: "das Kommunale Integrationszentrum Kreis Heinsberg".
    organiser_with_article: Line = ""
    organiser_email: EmailStr | None = None
    timezone: Zone = "Europe/Berlin"
    date: dt.date
    venue: Annotated[str, StringConstraints(max_length=500), AfterValidator(single_line)] = ""
    mode: ConferenceMode = ConferenceMode.HYBRID
    status: ConferenceStatus = ConferenceStatus.DRAFT
    retention_days: int = Field(default=365, gt=0, le=3650)
    reminders: list[Duration] = Field(default_factory=lambda: ["P7D", "P1D", "PT15M"])


class SessionSpec(_Spec):
    key: Key
    kind: SessionKind
    title: Line = Field(min_length=1)
    start: time
    end: time
    date: dt.date | None = None  # defaults to the conference's date
    room_template: Key = "plenary"  # used by plenary sessions (their own room)

    @model_validator(mode="after")
    def _ends_after_start(self) -> SessionSpec:
        if self.end <= self.start:
            raise ValueError(f"Sitzung {self.key!r}: Ende muss nach dem Beginn liegen")
        return self


class ForumSpec(_Spec):
    key: Key
    title: Line = Field(min_length=1)
    description: Annotated[str, StringConstraints(max_length=5000)] = ""
    capacity: int = Field(ge=0, le=100_000)
    in_person_room: Annotated[
        str, StringConstraints(max_length=200), AfterValidator(single_line)
    ] = ""
    room_template: Key = "forum"
    session: Key | None = None  # the breakout round; defaults to the only one
    invited_experts: list[Line] = Field(default_factory=list)


def _unique_keys(items: list[SessionSpec] | list[ForumSpec], what: str) -> None:
    seen: set[str] = set()
    for item in items:
        if item.key in seen:
            raise ValueError(f"{what} {item.key!r} kommt doppelt vor")
        seen.add(item.key)


class ConferenceSpec(_Spec):
    """A whole edition, as in conference-heinsberg.toml."""

    conference: ConferenceInfo
    sessions: list[SessionSpec] = Field(min_length=1)
    forums: list[ForumSpec] = Field(default_factory=list)

    @field_validator("sessions")
    @classmethod
    def _sessions_unique(cls, sessions: list[SessionSpec]) -> list[SessionSpec]:
        _unique_keys(sessions, "Sitzung")
        return sessions

    @field_validator("forums")
    @classmethod
    def _forums_unique(cls, forums: list[ForumSpec]) -> list[ForumSpec]:
        _unique_keys(forums, "Forum")
        return forums

    @model_validator(mode="after")
    def _forum_rounds_exist(self) -> ConferenceSpec:
        rounds = [s.key for s in self.sessions if s.kind is SessionKind.BREAKOUT_ROUND]
        for forum in self.forums:
            if forum.session is None and len(rounds) != 1:
                raise ValueError(
                    f"Forum {forum.key!r}: 'session' angeben (es gibt {len(rounds)} Forenrunden)"
                )
            if forum.session is not None and forum.session not in rounds:
                raise ValueError(f"Forum {forum.key!r}: keine Forenrunde {forum.session!r}")
        return self


class SessionOut(BaseModel):
    key: str
    kind: SessionKind
    title: str
    starts_at: datetime
    ends_at: datetime
    status: str
    room: str | None
    sequence: int


class ForumOut(BaseModel):
    key: str
    title: str
    description: str
    capacity: int
    in_person_room: str
    room_template: str
    room: str
    session: str | None
    invited_experts: list[str]
    assigned: int | None = None


class ConferenceOut(BaseModel):
    slug: str
    title: str
    lead_theme: str
    organiser: str
    organiser_with_article: str
    organiser_email: str
    timezone: str
    venue: str
    mode: ConferenceMode
    status: ConferenceStatus
    retention_days: int
    reminders: list[str]
    sessions: list[SessionOut]
    forums: list[ForumOut]


class ConferencePatch(_Spec):
    """Fields an organiser may change on an existing edition via the API."""

    title: Annotated[Line, Field(min_length=1)] | None = None
    lead_theme: Line | None = None
    organiser: Line | None = None
    organiser_with_article: Line | None = None
    organiser_email: EmailStr | None = None
    venue: Annotated[str, StringConstraints(max_length=500), AfterValidator(single_line)] | None = (
        None
    )
    mode: ConferenceMode | None = None
    status: ConferenceStatus | None = None
    retention_days: int | None = Field(default=None, gt=0, le=3650)
    reminders: list[Duration] | None = None
