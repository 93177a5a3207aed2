"""Conference orchestrator: hybrid, moderated conferences on self-hosted Jitsi Meet."""

__version__ = "0.1.0"
