"""Staff accounts, roles, sign-in sessions, one-time links and API tokens."""
