"""Small helper to store StrEnums as their values in a portable VARCHAR + CHECK column."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Enum


def str_enum(enum_type: type[StrEnum], name: str) -> Enum:
    return Enum(
        enum_type,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(member.value) for member in enum_type) + 8,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )
