"""The `EtcdKV` port on etcd v3 through its JSON gateway: `await connect(config) -> GatewayKV`.

etcd serves every v3 RPC as JSON over HTTP on the client port (grpc-gateway; `/v3/...` since etcd
3.4, the only prefix in 3.5): `POST /v3/kv/range {"key": base64, "range_end": base64}` and so on.
Short commands use this backend: `coreroll.etcd.http1` and the stdlib are all it imports, where
gRPC alone takes longer to import than `coreroll lock status` may take in all. Same keyspace as
the gRPC backend (`coreroll.etcd.v3kv`); long-lived watchers should prefer gRPC.

The JSON is protobuf's mapping with the proto field names: bytes are base64, int64 are strings,
fields at their zero value are left out (`succeeded` is absent when false, a PUT event has no
`type`). Everything read is checked: a reply that is not that shape is an `EtcdError` naming the
call. Endpoints are tried in order with a Status call; with user/password, `/v3/auth/authenticate`
gives the token sent as `Authorization`. gRPC error codes in the error body map to coreroll's
errors (UNAVAILABLE -> `EtcdUnavailableError`, OUT_OF_RANGE "compacted" -> `EtcdCompactedError`,
failed authentication -> `EtcdConfigError`). A gateway that cannot serve at all (none: HTTP 404;
or, with `--client-cert-auth`, one whose server certificate lacks the clientAuth usage it needs
to reach etcd's own gRPC) raises `GatewayUnusableError` when connecting: `open_kv` then uses the
gRPC backend.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.errors import (
    EtcdCompactedError,
    EtcdConfigError,
    EtcdError,
    EtcdUnavailableError,
    GatewayUnusableError,
)
from coreroll.etcd.http1 import Http1Client, HttpConnectError, HttpProtocolError
from coreroll.etcd.port import (
    CasResult,
    EtcdStatus,
    KeyValue,
    Listing,
    WatchEvent,
    decode_key,
    prefix_range_end,
)

PAGE = 1000
GRPC_UNAVAILABLE = 14
GRPC_OUT_OF_RANGE = 11
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")  # what may go into a header line


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _int(doc: Mapping[str, Any], name: str, where: str) -> int:
    value = doc.get(name, 0)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise EtcdError(f"etcd gateway {where}: {name!r} is not an integer: {str(value)[:40]!r}") from None
    if not -(2**63) <= number < 2**63:
        raise EtcdError(f"etcd gateway {where}: {name!r} is out of the int64 range")
    return number


def _bytes(doc: Mapping[str, Any], name: str, where: str) -> bytes:
    value = doc.get(name, "")
    if not isinstance(value, str):
        raise EtcdError(f"etcd gateway {where}: {name!r} is not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise EtcdError(f"etcd gateway {where}: {name!r} is not base64") from None


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise EtcdError(f"etcd gateway {where}: expected a JSON object")
    return value


def _kv(doc: Any, where: str) -> KeyValue:
    doc = _obj(doc, where)
    return KeyValue(
        decode_key(_bytes(doc, "key", where)),
        _bytes(doc, "value", where),
        _int(doc, "mod_revision", where),
        _int(doc, "create_revision", where),
        _int(doc, "lease", where),
    )


def _revision(doc: Mapping[str, Any], where: str) -> int:
    return _int(_obj(doc.get("header", {}), where), "revision", where)


class GatewayWatch:
    def __init__(self, kv: GatewayKV, prefix: str, start_revision: int) -> None:
        self._kv = kv
        self._body = json.dumps(
            {
                "create_request": {
                    "key": _b64(prefix.encode()),
                    "range_end": _b64(prefix_range_end(prefix.encode())),
                    "start_revision": start_revision,
                }
            }
        ).encode()
        self._stream: AsyncGenerator[tuple[int, bytes], None] | None = None

        self._results: AsyncGenerator[Mapping[str, Any], None] | None = None

    async def start(self) -> None:
        """Open the stream and read etcd's `created` reply (or its refusal)."""
        self._stream = self._kv.http.stream_lines("POST", self._kv.url("/v3/watch"), self._body)
        self._results = self._read_results(self._stream)
        try:
            first = await anext(self._results)
        except StopAsyncIteration:
            raise EtcdUnavailableError(
                (self._kv.endpoint,), "etcd closed the watch as it was created"
            ) from None
        if not first.get("created"):
            raise EtcdError("etcd gateway watch: the first reply does not say the watch was created")

    async def _read_results(
        self, stream: AsyncIterator[tuple[int, bytes]]
    ) -> AsyncGenerator[Mapping[str, Any], None]:
        where = "watch"
        try:
            async for status, line in stream:
                result = _obj(self._kv.decode(status, line, where).get("result", {}), where)
                if _int(result, "compact_revision", where) > 0:
                    raise EtcdCompactedError(f"etcd at {self._kv.endpoint} no longer has that history")
                if result.get("canceled"):
                    reason = str(result.get("cancel_reason", ""))[:200]
                    raise EtcdUnavailableError(
                        (self._kv.endpoint,), f"etcd cancelled the watch {reason}".strip()
                    )
                yield result
        except HttpProtocolError as exc:
            raise EtcdUnavailableError((self._kv.endpoint,), str(exc)) from exc

    async def __aiter__(self) -> AsyncIterator[WatchEvent]:
        assert self._results is not None, "watch_prefix starts the watch"
        where = "watch"
        async for result in self._results:
            for event in result.get("events", []) or []:
                event = _obj(event, where)
                kv = _kv(event.get("kv", {}), where)
                if event.get("type") == "DELETE":
                    yield WatchEvent("delete", kv.key, None, kv.mod_revision)
                else:
                    yield WatchEvent("put", kv.key, kv.value, kv.mod_revision)
        if self._results is not None:  # not cancelled
            raise EtcdUnavailableError((self._kv.endpoint,), "etcd closed the watch")

    async def cancel(self) -> None:
        stream, self._stream = self._stream, None
        results, self._results = self._results, None
        if results is not None:
            with contextlib.suppress(Exception):
                await results.aclose()
        if stream is not None:
            with contextlib.suppress(Exception):
                await stream.aclose()


class GatewayKV:
    api = "v3"

    def __init__(self, config: EtcdConfig, endpoint: str) -> None:
        self.config = config
        self.endpoint = endpoint.rstrip("/") if "://" in endpoint else f"http://{endpoint}".rstrip("/")
        self.http = Http1Client(config, basic_auth=False)

    def url(self, path: str) -> str:
        return self.endpoint + path

    def decode(self, status: int, body: bytes, where: str) -> Mapping[str, Any]:
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):
            raise EtcdError(f"etcd gateway {where}: HTTP {status}, not JSON: {body[:120]!r}") from None
        doc = _obj(doc, where)
        if status != 200 or ("error" in doc and "header" not in doc and "result" not in doc):
            raise self._error(status, doc, where)
        return doc

    def _error(self, status: int, doc: Mapping[str, Any], where: str) -> EtcdError:
        message = str(doc.get("message") or doc.get("error") or f"HTTP {status}")[:200]
        code = doc.get("code")
        if code == GRPC_UNAVAILABLE and "handshake failed" in message:
            return GatewayUnusableError(
                f"etcd's JSON gateway at {self.endpoint} cannot reach etcd: {message}"
            )
        if code == GRPC_UNAVAILABLE:
            return EtcdUnavailableError((self.endpoint,), message)
        if code == GRPC_OUT_OF_RANGE and "compacted" in message:
            return EtcdCompactedError(f"etcd at {self.endpoint}: {message}")
        if (
            "authentication failed" in message
            or "user name is empty" in message
            or "invalid auth token" in message
        ):
            return EtcdConfigError(f"etcd at {self.endpoint} refused the credentials: {message}")
        if status == 404:
            return GatewayUnusableError(f"etcd at {self.endpoint} has no JSON gateway at {where} (HTTP 404)")
        return EtcdError(f"etcd at {self.endpoint} {where}: {message}")

    async def call(self, path: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            reply = await self.http.request("POST", self.url(path), body=json.dumps(body).encode())
        except HttpConnectError as exc:
            raise EtcdUnavailableError((self.endpoint,), str(exc)) from exc
        except (HttpProtocolError, TimeoutError) as exc:
            raise EtcdUnavailableError((self.endpoint,), str(exc) or "no reply in time") from exc
        return self.decode(reply.status, reply.body, path)

    async def authenticate(self) -> None:
        if not self.config.username:
            return
        doc = await self.call(
            "/v3/auth/authenticate", {"name": self.config.username, "password": self.config.password or ""}
        )
        token = doc.get("token")
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise EtcdConfigError(f"etcd at {self.endpoint} answered authentication without a usable token")
        self.http.headers["Authorization"] = token

    async def get(self, key: str) -> KeyValue | None:
        doc = await self.call("/v3/kv/range", {"key": _b64(key.encode())})
        kvs = doc.get("kvs") or []
        return _kv(kvs[0], "range") if isinstance(kvs, list) and kvs else None

    async def get_prefix(
        self, prefix: str, *, revision: int = 0, newest: int | None = None, page: int = PAGE
    ) -> Listing:
        start = prefix.encode()
        end = _b64(prefix_range_end(start))
        found: list[KeyValue] = []
        while True:
            body: dict[str, Any] = {
                "key": _b64(start),
                "range_end": end,
                "revision": revision,
                "limit": newest or page,
            }
            if newest is not None:
                body |= {"sort_order": "DESCEND", "sort_target": "KEY"}
            doc = await self.call("/v3/kv/range", body)
            revision = revision or _revision(doc, "range")
            kvs = doc.get("kvs") or []
            if not isinstance(kvs, list):
                raise EtcdError("etcd gateway range: 'kvs' is not a list")
            batch = [_kv(kv, "range") for kv in kvs]
            found.extend(batch)
            if newest is not None or not doc.get("more") or not batch:
                break
            start = _bytes(_obj(kvs[-1], "range"), "key", "range") + b"\0"
        if newest is not None:
            found.reverse()
        return Listing(found, revision)

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        doc = await self.call("/v3/kv/put", {"key": _b64(key.encode()), "value": _b64(value), "lease": lease})
        return _revision(doc, "put")

    async def delete(self, key: str) -> bool:
        doc = await self.call("/v3/kv/deleterange", {"key": _b64(key.encode())})
        return _int(doc, "deleted", "deleterange") > 0

    async def compare_and_swap(self, key: str, value: bytes, mod_revision: int) -> CasResult:
        raw = _b64(key.encode())
        if mod_revision == 0:
            compare = {"key": raw, "target": "VERSION", "result": "EQUAL", "version": 0}
        else:
            compare = {"key": raw, "target": "MOD", "result": "EQUAL", "mod_revision": mod_revision}
        doc = await self.call(
            "/v3/kv/txn",
            {
                "compare": [compare],
                "success": [{"request_put": {"key": raw, "value": _b64(value)}}],
                "failure": [{"request_range": {"key": raw}}],  # the winner's value, for the retry
            },
        )
        responses = doc.get("responses") or []
        if not isinstance(responses, list) or not responses:
            raise EtcdError("etcd gateway txn: no responses")
        first = _obj(responses[0], "txn")
        if doc.get("succeeded") is True:
            return CasResult(True, _revision(_obj(first.get("response_put", {}), "txn"), "txn"))
        kvs = _obj(first.get("response_range", {}), "txn").get("kvs") or []
        return CasResult(False, 0, _kv(kvs[0], "txn") if isinstance(kvs, list) and kvs else None)

    async def grant_lease(self, ttl: int) -> int:
        return _int(await self.call("/v3/lease/grant", {"TTL": ttl}), "ID", "lease/grant")

    async def keep_lease_alive(self, lease: int) -> int:
        body = json.dumps({"ID": lease}).encode()
        async for status, line in self.http.stream_lines("POST", self.url("/v3/lease/keepalive"), body):
            result = _obj(self.decode(status, line, "lease/keepalive").get("result", {}), "lease/keepalive")
            return max(0, _int(result, "TTL", "lease/keepalive"))
        return 0

    async def revoke_lease(self, lease: int) -> None:
        await self.call("/v3/lease/revoke", {"ID": lease})

    async def watch_prefix(self, prefix: str, start_revision: int) -> GatewayWatch:
        watch = GatewayWatch(self, prefix, start_revision)
        await watch.start()
        return watch

    async def status(self) -> EtcdStatus:
        doc = await self.call("/v3/maintenance/status", {})
        return EtcdStatus(self.endpoint, str(doc.get("version", ""))[:40], _revision(doc, "status"))

    async def close(self) -> None:
        await self.http.close()


async def connect(config: EtcdConfig) -> GatewayKV:
    """The first endpoint whose gateway answers a Status call; `EtcdUnavailableError` names all."""
    failures: list[str] = []
    for endpoint in config.endpoints:
        kv = GatewayKV(config, endpoint)
        try:
            await kv.authenticate()
            await kv.status()
        except EtcdUnavailableError as exc:
            await kv.close()
            failures.append(f"{endpoint}: {exc.detail}")
            continue
        except BaseException:
            await kv.close()
            raise
        return kv
    raise EtcdUnavailableError(config.endpoints, "; ".join(failures))
