"""Fixtures of the client tests: the azure tests' endpoint over the fake executor (no engine)."""

from __future__ import annotations

from tests.azure.conftest import emulator

__all__ = ["emulator"]
