"""The Jitsi adapter: JWTs we mint, prosody's HTTP endpoints, event_sync payloads."""
