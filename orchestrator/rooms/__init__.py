"""Video rooms: one Jitsi room per forum and per plenary session, their templates and state."""
