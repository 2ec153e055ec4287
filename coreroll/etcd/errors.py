"""Errors shared by the etcd clients.

`EtcdUnavailableError(endpoints, detail)`: no endpoint answered; its message names every endpoint
tried, in the words flatcar's locksmithctl uses (`no etcd endpoints available, tried: a,b`).
`EtcdConfigError`: the TLS or auth settings cannot be used (a file missing, a bad password).
`V2ApiMissingError(endpoint)`: the etcd answered but does not serve the v2 keys API (HTTP 404 on
`/v2/keys`: etcd 3.4/3.5 without `--enable-v2`, or 3.6, which removed it).
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


class V2ApiMissingError(EtcdError):
    """The etcd at `endpoint` answered HTTP 404 on /v2/keys: it does not serve the v2 API."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        super().__init__(
            f"etcd at {endpoint} does not serve the v2 keys API (HTTP 404 on /v2/keys: etcd 3.4 and 3.5 "
            "serve it only when started with --enable-v2, 3.6 removed it)"
        )


class GatewayUnusableError(EtcdError):
    """etcd's JSON gateway cannot serve us though etcd answers: no gateway (HTTP 404), or the
    gateway cannot reach etcd's own gRPC (with --client-cert-auth, a server certificate without
    the clientAuth usage: "authentication handshake failed"). The gRPC backend still works."""


class EtcdCompactedError(EtcdError):
    """A watch asked for history etcd no longer keeps (v3 compaction; v2 keeps 1000 events)."""
