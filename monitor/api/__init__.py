"""The token-protected HTTP API under /api/v1/ (status, history, incidents, acks, silences)."""
