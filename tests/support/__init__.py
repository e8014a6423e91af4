"""Helpers shared by the tests: real servers, polling with deadlines, running the CLI."""
