"""Public keys prosody fetches to check our RS256 system tokens (muc_end_meeting)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/jitsi/asap", tags=["jitsi"])
