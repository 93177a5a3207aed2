"""Endpoints prosody calls: the reservation API and event_sync webhooks (JITSI.md)."""
