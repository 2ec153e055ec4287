"""How to reach an etcd cluster: endpoints, API version, TLS files and credentials."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT_ENDPOINTS = ("http://127.0.0.1:2379", "http://127.0.0.1:4001")
ETCD_APIS = ("auto", "v2", "v3")
V3_TRANSPORTS = ("grpc", "gateway")


def split_endpoints(values: Iterable[str]) -> tuple[str, ...]:
    """Flatten repeated and comma-separated endpoint values, dropping blanks, keeping order."""
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return tuple(out)


@dataclass(frozen=True)
class EtcdConfig:
    """Connection settings shared by every etcd client in coreroll.

    `api` is the API of the reboot-lock semaphores only: "v3" (via aetcd; this dataclass's default,
    what coreroll's own agents write), "v2" (HTTP `/v2/keys`, what Flatcar's locksmithd speaks) or
    "auto" (the command-line default: find where the semaphores are, `coreroll.locks.auto`).
    Everything else coreroll keeps in etcd (node status, commands, audit) is always v3.
    """

    endpoints: tuple[str, ...] = DEFAULT_ENDPOINTS
    api: str = "v3"
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    username: str | None = None
    password: str | None = None
    timeout: float = 5.0
    v3_transport: str = "grpc"  # "gateway": etcd's JSON gateway, for short commands (no gRPC import)
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.api not in ETCD_APIS:
            raise ValueError(f"--etcd-api must be auto, v2 or v3, not {self.api!r}")
        if self.v3_transport not in V3_TRANSPORTS:
            raise ValueError(f"v3 transport must be grpc or gateway, not {self.v3_transport!r}")
        if not self.endpoints:
            raise ValueError("at least one etcd endpoint is required")
        if bool(self.certfile) != bool(self.keyfile):
            raise ValueError("--etcd-certfile and --etcd-keyfile must be given together")
        if self.password and not self.username:
            raise ValueError("--etcd-password needs --etcd-username")
