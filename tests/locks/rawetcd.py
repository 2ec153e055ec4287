"""Raw etcd access for tests, independent of coreroll's clients (v3 JSON gateway, v2 HTTP)."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import httpx

from coreroll.locks.keys import semaphore_key


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def raw_put(endpoint: str, api: str, key: str, value: bytes) -> None:
    """Write `value` at the v3-style `key` the way another client would."""
    if api == "v3":
        httpx.post(
            f"{endpoint}/v3/kv/put", json={"key": _b64(key), "value": _b64(value)}, timeout=5
        ).raise_for_status()
    else:
        url = f"{endpoint}/v2/keys/{quote(key, safe='/')}"
        httpx.put(url, data={"value": value.decode()}, timeout=5).raise_for_status()


def raw_get(endpoint: str, api: str, key: str) -> bytes | None:
    if api == "v3":
        reply = httpx.post(f"{endpoint}/v3/kv/range", json={"key": _b64(key)}, timeout=5).json()
        kvs = reply.get("kvs") or []
        return base64.b64decode(kvs[0]["value"]) if kvs else None
    reply = httpx.get(f"{endpoint}/v2/keys/{quote(key, safe='/')}", timeout=5)
    if reply.status_code == 404:
        return None
    return reply.json()["node"]["value"].encode()


def raw_keys(endpoint: str, api: str, prefix: str) -> list[str]:
    """Every key under `prefix` (v3-style, no leading slash)."""
    if api == "v3":
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        reply = httpx.post(
            f"{endpoint}/v3/kv/range",
            json={"key": _b64(prefix), "range_end": _b64(end), "keys_only": True},
            timeout=5,
        ).json()
        return sorted(base64.b64decode(kv["key"]).decode() for kv in reply.get("kvs") or [])
    reply = httpx.get(
        f"{endpoint}/v2/keys/{quote(prefix, safe='/')}", params={"recursive": "true"}, timeout=5
    )
    out: list[str] = []

    def walk(node: dict) -> None:
        if node.get("dir"):
            for child in node.get("nodes", []) or []:
                walk(child)
        else:
            out.append(node["key"].lstrip("/"))

    if reply.status_code == 200:
        walk(reply.json()["node"])
    return sorted(out)


# What Flatcar's locksmithd sends (flatcar/locksmith lock/etcd.go through the vendored v2 client,
# vendor/go.etcd.io/etcd/client/keys.go): Init = PUT ?prevExist=false with `value` as a form field,
# then Get and PUT ?prevIndex=<modifiedIndex>. These are Go's json.Marshal bytes of its Semaphore.
# The key is the v3 key with a leading / (tests/wire/test_locksmith_keys.py checks it against Go's).
LOCKSMITHD_INITIAL = b'{"semaphore":1,"max":1,"holders":null}'


def locksmithd_lock(endpoint: str, machine_id: str, group: str = "") -> bytes:
    """Take a slot for `machine_id` over etcd's v2 API, byte for byte as locksmithd does (on an
    untouched semaphore: available 1 -> 0); returns the bytes written."""
    url = f"{endpoint}/v2/keys/{quote(semaphore_key(group), safe='/')}"
    created = httpx.put(
        url, params={"prevExist": "false"}, data={"value": LOCKSMITHD_INITIAL.decode()}, timeout=5
    )
    assert created.status_code in (201, 412), created.text  # 412: errorCode 105, node exists
    node = httpx.get(url, timeout=5).json()["node"]
    current = json.loads(node["value"])
    holders = sorted((current["holders"] or []) + [machine_id])
    value = json.dumps(
        {"semaphore": current["semaphore"] - 1, "max": current["max"], "holders": holders},
        separators=(",", ":"),
    ).encode()
    reply = httpx.put(
        url, params={"prevIndex": str(node["modifiedIndex"])}, data={"value": value.decode()}, timeout=5
    )
    reply.raise_for_status()
    return value
