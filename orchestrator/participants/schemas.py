"""The shape of a person as organisers enter it (API, CSV/XLSX rows) and as the API shows it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
)

from orchestrator.conferences.schemas import KEY_PATTERN, single_line
from orchestrator.participants.models import (
    AssignmentSource,
    AssignmentStatus,
    AttendanceMode,
    Language,
    Role,
)

MAX_CHOICES = 5


def normalise_email(value: str) -> str:
    return value.strip().lower()


Email = Annotated[EmailStr, StringConstraints(max_length=254), AfterValidator(normalise_email)]
Name = Annotated[str, StringConstraints(max_length=100), AfterValidator(single_line)]
Organisation = Annotated[str, StringConstraints(max_length=200), AfterValidator(single_line)]
ForumKey = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]


class PersonFields(BaseModel):
    """Everything about a person except the email, each field optional (for PATCH)."""

    model_config = ConfigDict(extra="forbid")

    first_name: Name | None = None
    last_name: Name | None = None
    organisation: Organisation | None = None
    role: Role | None = None
    attendance_mode: AttendanceMode | None = None
    language: Language | None = None
    consent: bool | None = None
    # Ranked forum keys, first choice first.
    forum_choices: list[ForumKey] | None = Field(default=None, max_length=MAX_CHOICES)

    @field_validator("forum_choices")
    @classmethod
    def _distinct(cls, choices: list[str] | None) -> list[str] | None:
        if choices is not None and len(set(choices)) != len(choices):
            raise ValueError("ein Forum darf nur einmal gewählt werden")
        return choices


class PersonIn(PersonFields):
    """A new person, or a row of an import file."""

    email: Email
    first_name: Name = ""
    last_name: Name = ""
    organisation: Organisation = ""
    role: Role = Role.PARTICIPANT
    attendance_mode: AttendanceMode = AttendanceMode.UNDECIDED
    language: Language = Language.DE
    consent: bool = False
    forum_choices: list[ForumKey] = Field(default_factory=list, max_length=MAX_CHOICES)


class PersonPatch(PersonFields):
    email: Email | None = None


class PersonOut(BaseModel):
    id: uuid.UUID
    email: str
    first_name: str
    last_name: str
    organisation: str
    role: Role
    attendance_mode: AttendanceMode
    language: Language
    consent: bool
    forum_choices: list[str]
    forum: str | None = Field(description="Key of the assigned forum, null when none")
    assignment_status: AssignmentStatus | None
    assignment_source: AssignmentSource | None
    personal_url: str
    created_at: datetime
    updated_at: datetime


class PersonPage(BaseModel):
    items: list[PersonOut]
    total: int
    offset: int
    limit: int
