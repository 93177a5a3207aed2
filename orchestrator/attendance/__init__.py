"""Attendance: Jitsi presence and in-person check-in, reconciled per person and session."""
