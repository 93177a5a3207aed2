"""Check-in codes: signed, unforgeable, and readable as QR codes."""

from __future__ import annotations

import uuid

from orchestrator.attendance.checkin_codes import (
    checkin_code,
    qr_png,
    qr_svg,
    verify_checkin_code,
)

SECRET = "x" * 43


def test_code_round_trips_and_refuses_forgery() -> None:
    person = uuid.uuid4()
    code = checkin_code(SECRET, person)
    assert verify_checkin_code(SECRET, code) == person
    assert verify_checkin_code(SECRET, f"  {code}\n") == person  # scanners add whitespace
    other = uuid.uuid4()
    forged = f"ci1.{other.hex}.{code.rsplit('.', 1)[1]}"
    assert verify_checkin_code(SECRET, forged) is None
    assert verify_checkin_code("y" * 43, code) is None
    for broken in ("", "ci1", "ci1..", f"ci2.{person.hex}.abc", f"ci1.nothex.{code[-22:]}"):
        assert verify_checkin_code(SECRET, broken) is None


def test_qr_codes_render() -> None:
    code = checkin_code(SECRET, uuid.uuid4())
    svg = qr_svg(code, title="Check-in <Anna>")
    assert svg.startswith("<svg") and "<title>Check-in &lt;Anna&gt;</title>" in svg
    assert qr_png(code).startswith(b"\x89PNG\r\n\x1a\n")
