"""The etcd v3 client factory: aetcd with endpoint failover, TLS and user/password.

`await connect_v3(config) -> aetcd.Client` tries `config.endpoints` in order and returns a client
whose endpoint answered a Status call within `config.timeout`; it raises `EtcdUnavailableError`
naming every endpoint tried, or `EtcdConfigError` for unusable TLS files or rejected credentials.

aetcd 1.0 only opens insecure gRPC channels (`aetcd.Client(host, port, username, password,
timeout, options, connect_wait_timeout)` has no TLS arguments), so `TLSClient`
(coreroll/etcd/aetcd_private.py, with every other private name of aetcd) subclasses it and
opens a secure channel when TLS is wanted. Unlike locksmithctl, a CA file alone is enough (server
authentication only); a client certificate needs both `certfile` and `keyfile`. An `https://`
endpoint with no CA file uses the system roots.

With several endpoints that are all IP addresses of one family (how etcd members are usually
listed), the returned client's gRPC channel holds every member, the one that answered first:
gRPC's pick_first policy then moves to the next member when the one in use dies, for every part
of coreroll sharing that client (an agent's reporter, reboot locks and command watch). Endpoints
given by host name stay pinned to the member that answered; the lock store still reconnects
through the list (`coreroll.etcd.v3kv`, when it owns the client).

`await get_at_revision(client, key, revision)` reads one key as it was at a past revision
(`None` when absent then); tests use it to walk a key's history.
"""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

import aetcd
import grpc
from aetcd import exceptions as aetcd_exceptions
from aetcd import rtypes

from coreroll.etcd.aetcd_private import TLSClient, range_request, status_request
from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.errors import EtcdConfigError, EtcdUnavailableError


def _read(path: str | None, what: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise EtcdConfigError(f"cannot read etcd {what} {path}: {exc.strerror or exc}") from exc


def channel_credentials(config: EtcdConfig, scheme: str) -> grpc.ChannelCredentials | None:
    """gRPC credentials for `config`, or None for a plain-text channel."""
    if scheme != "https" and not (config.cafile or config.certfile):
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read(config.cafile, "CA file"),
        private_key=_read(config.keyfile, "key file"),
        certificate_chain=_read(config.certfile, "certificate file"),
    )


def _split(endpoint: str) -> tuple[str, str, int]:
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    if not parts.hostname:
        raise EtcdConfigError(f"etcd endpoint {endpoint!r} has no host")
    return parts.scheme, parts.hostname, parts.port or 2379


def members_target(endpoint: str, endpoints: tuple[str, ...]) -> str | None:
    """A gRPC target listing every endpoint, `endpoint` first, when all are IP addresses of one
    family and one scheme (the channel then fails over by itself); None otherwise."""
    if len(endpoints) < 2:
        return None
    ordered = [endpoint, *(e for e in endpoints if e != endpoint)]
    families: set[int] = set()
    schemes: set[str] = set()
    addresses: list[str] = []
    for each in ordered:
        scheme, host, port = _split(each)
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return None  # a host name: gRPC resolves one name per channel
        families.add(ip.version)
        schemes.add(scheme)
        addresses.append(f"[{host}]:{port}" if ip.version == 6 else f"{host}:{port}")
    if len(families) != 1 or len(schemes) != 1:
        return None
    return f"ipv{families.pop()}:{','.join(addresses)}"


def _is_auth_failure(exc: BaseException) -> bool:
    return isinstance(exc, aetcd_exceptions.UnauthenticatedError | aetcd_exceptions.InvalidArgumentError) or (
        isinstance(exc, aetcd_exceptions.ClientError) and "authentication failed" in str(exc)
    )


def _client(config: EtcdConfig, endpoint: str, target: str | None = None) -> TLSClient:
    scheme, host, port = _split(endpoint)
    return TLSClient(
        host,
        port,
        endpoint=endpoint,
        credentials=channel_credentials(config, scheme),
        username=config.username,
        password=config.password if config.username else None,
        timeout=config.timeout,
        target=target,
    )


async def connect_v3(config: EtcdConfig) -> TLSClient:
    """A connected client on the first endpoint that answers; see the module docstring."""
    failures: list[str] = []
    for endpoint in config.endpoints:
        client = _client(config, endpoint)
        try:
            await asyncio.wait_for(_probe(client, config.timeout), config.timeout)
        except (aetcd_exceptions.ClientError, TimeoutError, OSError) as exc:
            await _close_quietly(client)
            if _is_auth_failure(exc):
                raise EtcdConfigError(f"etcd at {endpoint} refused the credentials: {exc}") from exc
            failures.append(f"{endpoint}: {_short(exc)}")
            continue
        target = members_target(endpoint, config.endpoints)
        if target is None:
            return client
        # this member answers: the client handed out holds every member, this one first
        await _close_quietly(client)
        members = _client(config, endpoint, target)
        await members.connect()
        return members
    raise EtcdUnavailableError(config.endpoints, "; ".join(failures))


async def _probe(client: TLSClient, seconds: float) -> None:
    await status_request(client, seconds)


async def _close_quietly(client: aetcd.Client) -> None:
    try:
        await client.close()
    except Exception:  # closing a channel that never connected may fail; nothing to keep
        pass


def _short(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


async def get_at_revision(client: aetcd.Client, key: bytes, revision: int) -> rtypes.KeyValue | None:
    """`key` as it was at `revision` (None when it did not exist then)."""
    reply = await range_request(client, key, revision=revision)
    if not reply.kvs:
        return None
    return rtypes.KeyValue(reply.kvs[0])
