"""A small async client for etcd's v2 keys API (`/v2/keys`), the API locksmith speaks.

`V2Client(config)` (async context manager; `await close()`):
- `get(key, recursive=False) -> V2Response`
- `put(key, value, prev_index=None, prev_exist=None, ttl=None, refresh=False) -> V2Response`
  (CAS with `prevIndex`; `prev_exist=False` = create only; `refresh=True` renews the TTL only)
- `create(key, value) -> V2Response` (= put with prevExist=false)
- `delete(key, prev_index=None, recursive=False) -> V2Response`
- `watch(key, wait_index=None, recursive=False) -> V2Response`: long-polls until the first change
  at or after `wait_index`.
- `version() -> bytes`: the endpoint's `/version` body.
Errors from etcd raise `V2KeyError(code, message, key, index)` (100 key not found, 101 compare
failed, 105 node exists, 401 event index cleared, ...); an etcd that answers HTTP 404 without an
etcd error body does not serve the v2 API at all: `V2ApiMissingError`. Endpoints are tried in
order; when none can be reached `EtcdUnavailableError` names them all. TLS: CA file alone or with a client
certificate; user/password go as HTTP basic auth, as locksmith's Go client sends them. HTTP is
`coreroll.etcd.http1` (stdlib only, so `coreroll lock` starts fast).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.errors import EtcdConfigError, EtcdError, EtcdUnavailableError, V2ApiMissingError
from coreroll.etcd.http1 import Http1Client, HttpConnectError, HttpReply

KEY_NOT_FOUND = 100
COMPARE_FAILED = 101
NODE_EXIST = 105
EVENT_INDEX_CLEARED = 401


class V2KeyError(EtcdError):
    """etcd answered with a v2 error body."""

    def __init__(self, code: int, message: str, key: str = "", index: int = 0) -> None:
        self.code = code
        self.message = message
        self.key = key
        self.index = index
        super().__init__(f"{message} ({code}) [{key}] at index {index}")


@dataclass
class V2Node:
    key: str
    value: str | None = None
    dir: bool = False
    modified_index: int = 0
    created_index: int = 0
    nodes: list[V2Node] = field(default_factory=list)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> V2Node:
        return cls(
            key=doc.get("key", "/"),
            value=doc.get("value"),
            dir=bool(doc.get("dir", False)),
            modified_index=int(doc.get("modifiedIndex", 0)),
            created_index=int(doc.get("createdIndex", 0)),
            nodes=[cls.from_json(n) for n in doc.get("nodes", []) or []],
        )

    def walk(self) -> list[V2Node]:
        """This node and every node below it that holds a value."""
        out: list[V2Node] = [] if self.dir else [self]
        for child in self.nodes:
            out.extend(child.walk())
        return out


@dataclass
class V2Response:
    action: str
    node: V2Node
    prev_node: V2Node | None
    etcd_index: int


class V2Client:
    def __init__(self, config: EtcdConfig) -> None:
        self.config = config
        self.endpoints = [
            e.rstrip("/") if "://" in e else f"http://{e}".rstrip("/") for e in config.endpoints
        ]
        self._current = 0
        self._http = Http1Client(config)

    @property
    def endpoint(self) -> str:
        return self.endpoints[self._current]

    async def close(self) -> None:
        await self._http.close()

    async def __aenter__(self) -> V2Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _request(
        self,
        method: str,
        key: str,
        params: dict[str, str],
        data: dict[str, str] | None = None,
        long_poll: bool = False,
    ) -> V2Response:
        path = "/v2/keys/" + quote(key.lstrip("/"), safe="/")
        failures: list[str] = []
        # Start with the endpoint that worked last; on a connection failure move to the next one.
        for step in range(len(self.endpoints)):
            index = (self._current + step) % len(self.endpoints)
            url = self.endpoints[index] + path
            body = urlencode(data).encode() if data is not None else None
            try:
                reply = await self._http.request(
                    method,
                    url,
                    query=params,
                    body=body,
                    content_type="application/x-www-form-urlencoded",
                    long_poll=long_poll,  # connecting is still bounded by the client timeout
                )
            except HttpConnectError as exc:
                failures.append(f"{self.endpoints[index]}: {exc or type(exc).__name__}")
                continue
            self._current = index
            return self._parse(reply, self.endpoints[index])
        raise EtcdUnavailableError(self.endpoints, "; ".join(failures))

    @staticmethod
    def _parse(reply: HttpReply, endpoint: str) -> V2Response:
        index_header = reply.headers.get("x-etcd-index", "0") or "0"
        etcd_index = int(index_header) if index_header.isdigit() and len(index_header) < 20 else 0
        if reply.status == 401 and "errorCode" not in reply.text:
            raise EtcdConfigError(f"etcd refused the credentials: {reply.text.strip()[:120]}")
        if reply.status == 404 and "errorCode" not in reply.text:
            # every missing key is a 404 *with* an etcd error body; a bare 404 is a server
            # without the v2 API (Go's "404 page not found")
            raise V2ApiMissingError(endpoint)
        try:
            doc = json.loads(reply.body)
        except (ValueError, RecursionError) as exc:
            raise EtcdError(
                f"etcd v2 answered HTTP {reply.status} without JSON: {reply.text[:120]!r}"
            ) from exc
        if not isinstance(doc, dict):
            raise EtcdError(f"etcd v2 answered HTTP {reply.status} with JSON that is not an object")
        if "errorCode" in doc:
            raise V2KeyError(
                int(doc["errorCode"]),
                str(doc.get("message", "")),
                str(doc.get("cause", "")),
                int(doc.get("index", 0)),
            )
        if reply.status >= 400 or not isinstance(doc.get("node"), dict):
            raise EtcdError(f"etcd v2 answered HTTP {reply.status}: {reply.text[:120]!r}")
        prev = doc.get("prevNode")
        return V2Response(
            action=str(doc.get("action", "")),
            node=V2Node.from_json(doc["node"]),
            prev_node=V2Node.from_json(prev) if prev else None,
            etcd_index=etcd_index,
        )

    async def get(self, key: str, recursive: bool = False) -> V2Response:
        params = {"recursive": "true", "sorted": "true"} if recursive else {}
        return await self._request("GET", key, params)

    async def put(
        self,
        key: str,
        value: str | bytes | None,
        prev_index: int | None = None,
        prev_exist: bool | None = None,
        *,
        ttl: int | None = None,
        refresh: bool = False,
    ) -> V2Response:
        """Set `key` (with `ttl` seconds to live); `refresh=True` only renews its TTL (no value)."""
        params: dict[str, str] = {}
        if prev_index is not None:
            params["prevIndex"] = str(prev_index)
        if refresh:
            params["refresh"] = "true"
            prev_exist = True
        if prev_exist is not None:
            params["prevExist"] = "true" if prev_exist else "false"
        data: dict[str, str] = {}
        if ttl is not None:
            data["ttl"] = str(ttl)
        if value is not None and not refresh:
            data["value"] = (
                value.decode("utf-8", errors="surrogateescape") if isinstance(value, bytes) else value
            )
        return await self._request("PUT", key, params, data=data)

    async def version(self) -> bytes:
        """The body of `GET /version` on the endpoint in use (`{"etcdserver": "3.5.x", ...}`)."""
        try:
            reply = await self._http.request("GET", self.endpoint + "/version")
        except HttpConnectError as exc:
            raise EtcdUnavailableError(self.endpoints, str(exc)) from exc
        return reply.body

    async def create(self, key: str, value: str | bytes) -> V2Response:
        return await self.put(key, value, prev_exist=False)

    async def delete(self, key: str, prev_index: int | None = None, recursive: bool = False) -> V2Response:
        params: dict[str, str] = {}
        if prev_index is not None:
            params["prevIndex"] = str(prev_index)
        if recursive:
            params["recursive"] = "true"
        return await self._request("DELETE", key, params)

    async def watch(self, key: str, wait_index: int | None = None, recursive: bool = False) -> V2Response:
        params = {"wait": "true"}
        if wait_index is not None:
            params["waitIndex"] = str(wait_index)
        if recursive:
            params["recursive"] = "true"
        return await self._request("GET", key, params, long_poll=True)
