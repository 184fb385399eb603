"""Prerequisite guards: skip on a developer's machine, fail in CI.

A test that needs something of its environment (an installed torch, a CPU
build of it) skips where that is missing on purpose, but in CI (``CI`` set, and
not ``false``/``0``) the set-up promised it, so the same guard fails with the
reason instead: a missing prerequisite must never turn into a green run.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

__all__ = ["in_ci", "skip_or_fail"]


def in_ci() -> bool:
    """Whether the tests run in CI (``CI=true``, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the current test (or fixture) with ``reason``; under CI, fail with it."""
    if in_ci():
        pytest.fail(f"{reason} (CI must provide this; it is not skipped there)", pytrace=False)
    pytest.skip(reason)
