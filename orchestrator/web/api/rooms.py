"""Rooms: live occupancy from prosody."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/rooms", tags=["rooms"])
