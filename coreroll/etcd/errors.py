"""Errors shared by the etcd clients.

`EtcdUnavailableError(endpoints, detail)`: no endpoint answered; its message names every endpoint
tried, in the words flatcar's locksmithctl uses (`no etcd endpoints available, tried: a,b`).
`EtcdConfigError`: the TLS or auth settings cannot be used (a file missing, a bad password).
"""

from __future__ import annotations

from collections.abc import Sequence


class EtcdError(Exception):
    """Base of every etcd client error raised by coreroll."""


class EtcdUnavailableError(EtcdError):
    """None of the endpoints answered within the client timeout."""

    def __init__(self, endpoints: Sequence[str], detail: str = "") -> None:
        self.endpoints = tuple(endpoints)
        self.detail = detail
        message = f"no etcd endpoints available, tried: {','.join(self.endpoints)}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)


class EtcdConfigError(EtcdError):
    """The connection settings cannot work: unreadable TLS file, rejected credentials."""
