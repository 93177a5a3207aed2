"""The people area's input: the list's query string as filters, the person form as the
API's schema (participants/schemas.py), with each problem tied to the field it is about."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from pydantic import ValidationError

from orchestrator.participants.listing import Filters, Invitation
from orchestrator.participants.models import AttendanceMode, Language, Person, Role, Rsvp
from orchestrator.participants.schemas import MAX_CHOICES, PersonIn, PersonPatch

E = TypeVar("E", bound=StrEnum)
TEXT_FIELDS = ("email", "first_name", "last_name", "organisation")
CHOICE_FIELDS = tuple(f"forum_choice_{n}" for n in range(1, MAX_CHOICES + 1))
MAX_QUERY = 200


def _enum(kind: type[E], value: str | None) -> E | None:
    try:
        return kind(value) if value else None
    except ValueError:
        return None  # an unknown value filters nothing (a stale bookmark, a typo)


def filters_of(query: Mapping[str, str]) -> Filters:
    """The list's filters from its query string; what is not understood is left out."""
    consent = {"yes": True, "no": False}.get(query.get("consent", ""))
    return Filters(
        q=query.get("q", "").strip()[:MAX_QUERY],
        forum=query.get("forum", "").strip()[:40],
        waiting=query.get("waiting") == "1",
        rsvp=_enum(Rsvp, query.get("rsvp")),
        invitation=_enum(Invitation, query.get("invitation")),
        role=_enum(Role, query.get("role")),
        mode=_enum(AttendanceMode, query.get("mode")),
        consent=consent,
    )


def page_of(query: Mapping[str, str]) -> int:
    value = query.get("page", "1")
    return int(value) if value.isdigit() and 0 < len(value) < 7 else 1


@dataclass
class PersonForm:
    """The form's values as typed (shown again on an error) and its errors by field."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # field -> problem code

    def value(self, name: str) -> str:
        return self.values.get(name, "")


def form_of_person(person: Person) -> PersonForm:
    """The edit form filled with a person's current data."""
    values = {name: str(getattr(person, name) or "") for name in TEXT_FIELDS}
    values |= {
        "role": person.role.value,
        "attendance_mode": person.attendance_mode.value,
        "language": person.language.value,
        "consent": "1" if person.consent else "",
    }
    for name, choice in zip(CHOICE_FIELDS, person.choices, strict=False):
        values[name] = choice.forum.key
    return PersonForm(values)


def _code(kind: str, name: str) -> str:
    if kind == "missing":
        return "missing"
    if kind == "string_too_long":
        return "too_long"
    if kind in ("string_pattern_mismatch", "enum"):
        return "unknown_value"
    if name == "email":
        return "email"
    if name.startswith("forum_choice"):
        return "choice_twice"
    return "invalid"  # e.g. a line break in a name


def _field_of(location: tuple[int | str, ...], choices: list[str]) -> str:
    if not location:
        return "email"
    if location[0] != "forum_choices":
        return str(location[0])
    if len(location) > 1 and isinstance(location[1], int):
        return choices[location[1]]
    return choices[-1] if choices else CHOICE_FIELDS[0]


def parse_person(
    submitted: Mapping[str, str], forum_keys: set[str], *, new: bool
) -> tuple[PersonIn | PersonPatch | None, PersonForm]:
    """A new person (PersonIn) or all of a person's fields (PersonPatch) from the form."""
    form = PersonForm({name: str(submitted.get(name, "")) for name in (*TEXT_FIELDS, "role")})
    for name in ("attendance_mode", "language", *CHOICE_FIELDS):
        form.values[name] = str(submitted.get(name, ""))
    form.values["consent"] = "1" if submitted.get("consent") else ""
    chosen = [name for name in CHOICE_FIELDS if form.value(name).strip()]
    data: dict[str, object] = {name: form.value(name) for name in TEXT_FIELDS}
    # A choice left out keeps its default (new) or its current value (edit).
    data |= {n: form.value(n) for n in ("role", "attendance_mode", "language") if form.value(n)}
    data |= {"consent": bool(form.values["consent"])}
    data["forum_choices"] = [form.value(name).strip() for name in chosen]
    person: PersonIn | PersonPatch | None = None
    try:
        person = (PersonIn if new else PersonPatch).model_validate(data)
    except ValidationError as error:
        for problem in error.errors():
            name = _field_of(tuple(problem["loc"]), chosen)
            form.errors.setdefault(name, _code(problem["type"], name))
    if not form.value("email").strip():
        form.errors["email"] = "missing"
    for name in chosen:
        if form.value(name).strip() not in forum_keys:
            form.errors.setdefault(name, "unknown_value")
    return (None if form.errors else person), form


OPTIONS_ROLE = tuple(Role)
OPTIONS_MODE = tuple(AttendanceMode)
OPTIONS_LANGUAGE = tuple(Language)
