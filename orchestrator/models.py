"""Imports every domain's models so that Base.metadata is complete (Alembic, tests)."""

from orchestrator.conferences.models import Conference, ConferenceSession, Forum
from orchestrator.db import Base
from orchestrator.participants.models import Assignment, ForumChoice, Person

__all__ = [
    "Assignment",
    "Base",
    "Conference",
    "ConferenceSession",
    "Forum",
    "ForumChoice",
    "Person",
]
