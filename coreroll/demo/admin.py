"""The few admin calls the demo's release schedule makes on the update server (docs/api.md).

`ServerAdmin(url, token)` wraps one `httpx.AsyncClient` with the bearer token:
- `publish_synthetic(version, channel=None, image_size=65536) -> dict`: the server builds and
  signs a payload for `version` with its own key (`POST /api/v1/releases`, `synthetic: true`);
- `promote(version, to) -> dict`: alpha -> beta -> stable (`POST /api/v1/releases/{v}/promote`);
- `set_policy(group, changes) -> dict` (`PUT /api/v1/groups/{id}/policy`), `group(id) -> dict`,
  `activity(after=0) -> list[dict]`;
- `aclose()`.
A refusal raises `AdminError` with the server's `{"error": ...}` text and the call that failed.
"""

from __future__ import annotations

from typing import Any

import httpx


class AdminError(RuntimeError):
    """The update server refused or failed an admin call."""


class ServerAdmin:
    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    async def _call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        reply = await self._http.request(method, path, **kwargs)
        if reply.status_code != expect:
            try:
                detail = reply.json().get("error", reply.text)
            except ValueError:
                detail = reply.text
            raise AdminError(f"{method} {self.url}{path} -> {reply.status_code}: {detail}")
        return reply.json()

    async def publish_synthetic(
        self, version: str, channel: str | None = None, image_size: int = 65536
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"version": version, "synthetic": True, "image_size": image_size}
        if channel:
            body["channel"] = channel
        result: dict[str, Any] = await self._call("POST", "/api/v1/releases", 201, json=body)
        return result

    async def promote(self, version: str, to: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "POST", f"/api/v1/releases/{version}/promote", json={"to": to}
        )
        return result

    async def set_policy(self, group: str, changes: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("PUT", f"/api/v1/groups/{group}/policy", json=changes)
        return result

    async def group(self, group: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", f"/api/v1/groups/{group}")
        return result

    async def activity(self, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        reply = await self._call("GET", "/api/v1/activity", params={"after": after, "limit": limit})
        return list(reply.get("activity", []))

    async def aclose(self) -> None:
        await self._http.aclose()
