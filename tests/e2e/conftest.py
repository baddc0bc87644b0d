"""Fixtures for the end-to-end tests that drive the real Codex CLI."""
from tests.e2e.codex import codex_bin  # noqa: F401  (the pinned Codex CLI, installed on demand)
