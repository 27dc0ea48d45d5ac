"""Fixtures of the end-to-end tests live in tests/conftest.py (shared with tests/engine)."""
