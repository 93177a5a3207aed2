"""The HTTP edge: FastAPI app, JSON API, pages and Jitsi callbacks."""
