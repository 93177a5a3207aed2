"""Imports every domain's models so that Base.metadata is complete (Alembic, tests)."""

from orchestrator.accounts.models import (
    ApiToken,
    LoginFailure,
    StaffAudit,
    StaffGrant,
    StaffLink,
    StaffLogin,
    StaffUser,
)
from orchestrator.attendance.models import (
    AttendanceOverride,
    CheckIn,
    JitsiEvent,
    PresenceInterval,
)
from orchestrator.conferences.models import Conference, ConferenceSession, Forum
from orchestrator.db import Base
from orchestrator.invitations.models import CalendarEntry
from orchestrator.mail.models import OutboxMessage
from orchestrator.participants.models import Assignment, ForumChoice, Person
from orchestrator.rooms.models import JoinClick, Room, RoomReservation
from orchestrator.scheduling.models import Reminder

__all__ = [
    "ApiToken",
    "Assignment",
    "AttendanceOverride",
    "Base",
    "CalendarEntry",
    "CheckIn",
    "Conference",
    "ConferenceSession",
    "Forum",
    "ForumChoice",
    "JitsiEvent",
    "JoinClick",
    "LoginFailure",
    "OutboxMessage",
    "Person",
    "PresenceInterval",
    "Reminder",
    "Room",
    "RoomReservation",
    "StaffAudit",
    "StaffGrant",
    "StaffLink",
    "StaffLogin",
    "StaffUser",
]
