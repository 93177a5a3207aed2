"""Reminders and the conference's timeline: schedules are rows, the worker claims them."""
