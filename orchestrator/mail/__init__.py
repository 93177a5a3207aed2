"""Outgoing mail: the persistent outbox, rendering from templates, and the SMTP sender."""
