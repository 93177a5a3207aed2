"""Imports every domain's models so that Base.metadata is complete (Alembic, tests)."""

from orchestrator.conferences.models import Conference, ConferenceSession, Forum
from orchestrator.db import Base
from orchestrator.participants.models import Assignment, ForumChoice, Person
from orchestrator.rooms.models import JoinClick, Room, RoomReservation

__all__ = [
    "Assignment",
    "Base",
    "Conference",
    "ConferenceSession",
    "Forum",
    "ForumChoice",
    "JoinClick",
    "Person",
    "Room",
    "RoomReservation",
]
