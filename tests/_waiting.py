"""Waiting on an event with a deadline, the one way tests synchronise (never a bare sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(what: str, check: Callable[[], T], within: float, every: float = 0.05) -> T:
    """The first truthy value of ``check()``, polled every ``every`` s; the test fails naming ``what`` after ``within`` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"{what}: not within {within:.0f} s")
