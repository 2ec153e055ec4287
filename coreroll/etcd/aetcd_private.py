"""Every use of aetcd's private names, in one place (as tui/textual_compat.py does for Textual).

aetcd 1.0 has no TLS and no raw Range with paging/sorting/revision, so coreroll reaches inside:
- `TLSClient.connect` re-does `aetcd.Client.connect` over the attributes in `CLIENT_ATTRIBUTES`
  with a secure channel and a multi-member target;
- `raise_translated(exc)` turns a gRPC error into aetcd's exception (`aetcd.exceptions._handle_exception`);
- `range_request` / `status_request` call the stubs aetcd keeps (`kvstub`, `maintenancestub`,
  `metadata`, `_timeout`).
tests/etcd/test_aetcd_private.py fails when any of these names is gone from the installed aetcd;
pyproject.toml bounds aetcd below its next major version.
"""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn

import aetcd
import grpc
from aetcd import exceptions as aetcd_exceptions
from aetcd import rpc, watcher

# (object, private attribute) pairs this module relies on; the guard test checks each one.
CLIENT_ATTRIBUTES = (
    "_connected",
    "_is_connecting",
    "_connect_wait_timeout",
    "_host",
    "_port",
    "_options",
    "_username",
    "_password",
    "_timeout",
    "_watcher",
    "metadata",
    "channel",
    "auth_stub",
    "kvstub",
    "clusterstub",
    "leasestub",
    "maintenancestub",
)
MODULE_NAMES = (
    (aetcd_exceptions, "_handle_exception"),
    (rpc, "AioRpcError"),
    (rpc, "AuthStub"),
    (rpc, "KVStub"),
    (rpc, "ClusterStub"),
    (rpc, "LeaseStub"),
    (rpc, "MaintenanceStub"),
    (rpc, "WatchStub"),
    (rpc, "RangeRequest"),
    (rpc, "StatusRequest"),
    (rpc, "AuthenticateRequest"),
    (watcher, "Watcher"),
)


class TLSClient(aetcd.Client):
    """aetcd.Client that can open a TLS channel (`credentials`) and remembers its endpoint;
    `target` is a gRPC target naming several members (`ipv4:10.0.0.1:2379,10.0.0.2:2379`)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        endpoint: str,
        credentials: grpc.ChannelCredentials | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float | None = None,
        target: str | None = None,
    ) -> None:
        super().__init__(host=host, port=port, username=username, password=password, timeout=timeout)  # pyright: ignore[reportArgumentType]  # aetcd annotates timeout as int; it takes seconds as a float
        self.endpoint = endpoint
        self._credentials = credentials
        self._target = target

    async def connect(self) -> None:
        # Same steps as aetcd.Client.connect, but the channel may be a secure one.
        if self._connected.is_set():
            return
        if self._is_connecting:
            await asyncio.wait_for(self._connected.wait(), self._connect_wait_timeout)
            return
        try:
            self._is_connecting = True
            target = self._target or f"{self._host}:{self._port}"
            options = list(self._options.items())
            if self._target:  # TLS names and :authority are the member that answered, not the list
                options.append(("grpc.default_authority", f"{self._host}:{self._port}"))
            if self._credentials is not None:
                self.channel = grpc.aio.secure_channel(target, self._credentials, options=options)
            else:
                self.channel = grpc.aio.insecure_channel(target, options=options)
            if self._username is not None and self._password is not None:
                self.auth_stub = rpc.AuthStub(self.channel)
                request = rpc.AuthenticateRequest(name=self._username, password=self._password)
                try:
                    reply = await self.auth_stub.Authenticate(request, timeout=self._timeout)
                except rpc.AioRpcError as exc:
                    raise_translated(exc)
                self.metadata = (("token", reply.token),)
            self.kvstub = rpc.KVStub(self.channel)
            self.clusterstub = rpc.ClusterStub(self.channel)
            self.leasestub = rpc.LeaseStub(self.channel)
            self.maintenancestub = rpc.MaintenanceStub(self.channel)
            self._watcher = watcher.Watcher(
                rpc.WatchStub(self.channel), timeout=self._timeout, metadata=self.metadata
            )
            self._connected.set()
        finally:
            self._is_connecting = False


def raise_translated(exc: Exception) -> NoReturn:
    """Raise aetcd's exception for a gRPC error (ConnectionFailedError, RevisionCompactedError...)."""
    aetcd_exceptions._handle_exception(exc)
    raise exc  # not reached: _handle_exception always raises


async def range_request(
    client: aetcd.Client,
    key: bytes,
    range_end: bytes | None = None,
    *,
    revision: int = 0,
    limit: int = 0,
    newest_first: bool = False,
    rpc_seconds: float | None = None,
) -> Any:
    """A raw Range call: paging (`limit`), a past `revision`, newest-first by key."""
    await client.connect()
    assert client.kvstub is not None  # connect() set it
    request: Any = rpc.RangeRequest(key=key, revision=revision, limit=limit)
    if range_end is not None:
        request.range_end = range_end
    if newest_first:
        request.sort_order = rpc.RangeRequest.DESCEND
        request.sort_target = rpc.RangeRequest.KEY
    try:
        return await client.kvstub.Range(
            request, timeout=rpc_seconds or client._timeout, metadata=client.metadata
        )
    except rpc.AioRpcError as exc:
        raise_translated(exc)


async def status_request(client: aetcd.Client, rpc_seconds: float) -> Any:
    """The member's Status reply (version, revision in the header), without aetcd's member lookup."""
    await client.connect()
    assert client.maintenancestub is not None  # connect() set it
    try:
        return await client.maintenancestub.Status(
            rpc.StatusRequest(), timeout=rpc_seconds, metadata=client.metadata
        )
    except rpc.AioRpcError as exc:
        raise_translated(exc)
