"""opsmon: a monitoring sidecar for Docker Compose stacks."""

__version__ = "0.1.0"
