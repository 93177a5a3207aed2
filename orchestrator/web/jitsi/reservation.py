"""Jitsi's reservation API (mod_reservations): which rooms may exist, and when."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/reservation", tags=["jitsi"])
