"""Personal join links /j/{token}/{room}: check, record, mint the JWT, redirect to Jitsi."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["participants"])
