"""A small client for rclone's remote-control API (``rclone mount --rc``).

The rc server listens on a loopback port with a user and password known only
to the watchdog's state file (mode 0600).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drivelab._host_id import is_this_host
from drivelab.drive._config import WatchdogState
from drivelab.errors import RcloneError

__all__ = ["RcClient", "RcUnavailable"]

_LOG_HINT = "see rclone.log in this machine's .drivelab/drive/hosts/<host>/"


class RcUnavailable(RcloneError):
    """The rclone process behind the drive does not answer its rc API."""


@dataclass(frozen=True)
class RcClient:
    url: str
    user: str
    password: str

    @classmethod
    def from_state(cls, state: WatchdogState) -> RcClient | None:
        rc = state.rc
        if state.host is not None and not is_this_host(state.host):
            return None  # a loopback address of another machine, or of an earlier boot of this one
        if not isinstance(rc, dict) or not rc.get("url"):
            return None
        return cls(rc["url"], rc.get("user", ""), rc.get("password", ""))

    def call(self, command: str, params: dict[str, Any] | None = None, *, timeout: float = 10.0) -> dict[str, Any]:
        import httpx  # only a remote drive needs it; commands on a local drive start faster without

        try:
            response = httpx.post(
                f"{self.url.rstrip('/')}/{command}",
                json=params or {},
                auth=(self.user, self.password),
                timeout=timeout,
            )
        except httpx.HTTPError as exc:
            raise RcUnavailable(f"rclone's rc API at {self.url} does not answer ({exc.__class__.__name__})", hint="see `drivelab drive status`; the watchdog remounts a dead drive") from exc
        if response.status_code != 200:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise RcloneError(f"rclone rc {command} failed: {message.strip()}", hint=_LOG_HINT)
        try:
            return response.json()
        except ValueError as exc:
            raise RcloneError(f"rclone rc {command} did not answer JSON", hint=_LOG_HINT) from exc

    def alive(self) -> bool:
        try:
            self.call("core/pid", timeout=2.0)
        except RcloneError:
            return False
        return True
