"""Property test over the update server's HTTP API (the schemathesis idea, with hypothesis alone):
every route the app's OpenAPI lists, plus the plain Starlette routes (Omaha, packages, healthz,
metrics), called with generated path values, query strings, bodies and headers against the real
server. Only documented outcomes may come back: never a 500, only the status codes docs/api.md
lists, JSON errors as {"error": "..."} without a stack trace, and the server healthy afterwards.

Why not schemathesis itself: the routes read raw bodies (no request models, for the hot path), so
the OpenAPI document has no parameters or bodies to generate from; the strategies below carry what
docs/api.md documents instead. Bounded: `EXAMPLES` per test, about 20 s in all on 2 cores (one kept-alive connection).
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coreroll.omaha.payload import generate_private_key, write_keypair
from coreroll.server.app import create_app
from coreroll.server.runner import RunningServer, run_server_in_thread
from coreroll.server.settings import ServerSettings
from tests.faults.counts import record
from tests.omaha.fixtures import UPDATE_ENGINE_REQUEST

pytestmark = pytest.mark.slow

EXAMPLES = 600
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
# docs/api.md, "Errors": 400, 401, 404, 409, 413, 416, 422; plus 200/201/206 and 503 (healthz).
DOCUMENTED = {200, 201, 206, 400, 401, 404, 409, 413, 416, 422}
PLAIN_ROUTES = [("POST", "/v1/update/"), ("GET", "/packages/{version}/{filename}"), ("HEAD", "/packages/{version}/{filename}"),
                ("GET", "/healthz"), ("GET", "/metrics")]  # fmt: skip
QUERY_NAMES = ["group", "status", "channel", "version", "stale", "limit", "offset", "after", "to", "filename",
               "synthetic", "image_size"]  # fmt: skip
POLICY_KEYS = ["updates_enabled", "max_updates_per_period", "period_seconds", "max_concurrent",
               "update_timeout_seconds", "safe_mode", "office_hours", "timezone"]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("fuzz-server")
    write_keypair(data / "keys", generate_private_key())
    with run_server_in_thread(ServerSettings(data_dir=data)) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def api_routes(data_dir: Path) -> list[tuple[str, str]]:
    schema = create_app(ServerSettings(data_dir=data_dir)).openapi()
    routes = [(m.upper(), p) for p, methods in schema["paths"].items() for m in methods]
    return [r for r in routes if r[1] != "/api/v1/feed"] + PLAIN_ROUTES


ROUTES = api_routes(Path("/nonexistent-coreroll-fuzz"))  # openapi() does not touch the data dir

texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
path_values = st.one_of(
    st.sampled_from(["stable", "beta", "alpha", "9.9.9", "1000.0.0", "update.gz", "..", "../../etc/passwd",
                     "%2e%2e", "a" * 300, "0", "-1", "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"]),
    texts.filter(lambda s: s not in ("", ".", "..")),
)  # fmt: skip
numbers = st.one_of(
    st.integers(-(2**70), 2**70).map(str), st.sampled_from(["", "nan", "1e9", "0x10", "true", " 5", "-0"])
)
query = st.dictionaries(st.one_of(st.sampled_from(QUERY_NAMES), texts), st.one_of(numbers, texts), max_size=4)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
scalar = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | texts
    | st.floats(allow_nan=False, allow_infinity=False)
)
known_bodies = st.one_of(
    st.fixed_dictionaries(
        {"version": st.one_of(path_values, scalar)},
        optional={
            "synthetic": scalar,
            "channel": st.one_of(path_values, scalar),
            "image_size": st.one_of(st.integers(-10, 70_000), st.just(64 * 1024**2 + 1), scalar),
        },
    ),
    st.dictionaries(st.sampled_from(POLICY_KEYS), scalar, max_size=4),
    st.fixed_dictionaries({"to": st.one_of(path_values, scalar)}),
    st.fixed_dictionaries(
        {"id": path_values, "name": scalar, "track": path_values, "channel": path_values},
        optional={"policy": st.dictionaries(st.sampled_from(POLICY_KEYS), scalar, max_size=3)},
    ),
)
bodies = st.one_of(
    st.none(),
    known_bodies.map(lambda d: ("json", d)),
    json_values.map(lambda d: ("json", d)),
    st.binary(max_size=300).map(lambda b: ("bytes", b)),
)
ranges = st.one_of(
    st.none(),
    st.sampled_from(["bytes=0-0", "bytes=-1", "bytes=5-", "bytes=999999999-", "bytes=3-1", "bytes=a-b",
                     "items=0-1", "bytes=0-1,4-5", "bytes=-0", ""]),
    st.text(alphabet=string.ascii_letters + string.digits + "=-,; ", max_size=20).map(str.strip),
)  # fmt: skip


def check_reply(method: str, route: str, reply: httpx.Response) -> None:
    where = f"{method} {route} -> {reply.status_code}: {reply.text[:200]!r}"
    assert reply.status_code != 500, where
    expected = DOCUMENTED | ({503} if route == "/healthz" else set())
    assert reply.status_code in expected, where
    assert "Traceback" not in reply.text, where
    is_json_api = route.startswith("/api/") or route.startswith("/packages/")
    if reply.status_code >= 400 and is_json_api and method != "HEAD":
        doc = reply.json()
        assert isinstance(doc, dict) and isinstance(doc.get("error"), str) and doc["error"], where


@FUZZ
@given(
    route=st.sampled_from(ROUTES),
    values=st.fixed_dictionaries(
        {k: path_values for k in ("name", "version", "group_id", "machine_id", "filename")}
    ),
    params=query,
    body=bodies,
    authorized=st.booleans(),
    content_type=st.sampled_from([None, "application/json", "application/octet-stream", "text/plain", "x/y"]),
    range_header=ranges,
)
def test_json_api_answers_only_documented_statuses(
    server: RunningServer,
    http: httpx.Client,
    route: tuple[str, str],
    values: dict[str, str],
    params: dict[str, str],
    body: tuple[str, Any] | None,
    authorized: bool,
    content_type: str | None,
    range_header: str | None,
) -> None:
    method, template = route
    if template == "/v1/update/":
        return  # the Omaha route has its own test below (XML bodies)
    # dots percent-encoded too: "..", sent raw, would be folded away by the client, not the server
    path = template.format(**{k: quote(v, safe="").replace(".", "%2E") for k, v in values.items()})
    headers = {"Authorization": f"Bearer {server.token}"} if authorized else {}
    content: bytes | None = None
    if body is not None:
        kind, value = body
        content = json.dumps(value).encode() if kind == "json" else value
        headers["Content-Type"] = content_type or (
            "application/json" if kind == "json" else "application/octet-stream"
        )
    if range_header is not None:
        headers["Range"] = range_header
    reply = http.request(method, path, params=params, content=content, headers=headers)
    record("api_requests_fuzzed", suite="fuzz")
    record(f"api_status_{reply.status_code}", suite="fuzz")
    check_reply(method, template, reply)


versions = st.one_of(st.integers(0, 30).map(lambda n: f"2000.0.{n}"), path_values)
channels = st.one_of(st.sampled_from(["alpha", "beta", "stable"]), path_values)
policy_values = {
    "updates_enabled": st.booleans(), "safe_mode": st.booleans(),
    "max_updates_per_period": st.integers(-2, 2**32), "period_seconds": st.integers(-2, 2**32),
    "max_concurrent": st.integers(-2, 2**32), "update_timeout_seconds": st.integers(-2, 2**32),
    "office_hours": st.booleans(), "timezone": st.sampled_from(["UTC", "Europe/Berlin", "Mars/Base", ""]),
}  # fmt: skip
policies = st.dictionaries(st.sampled_from(POLICY_KEYS), scalar, max_size=2).flatmap(
    lambda wrong: st.fixed_dictionaries({}, optional=policy_values).map(lambda right: {**right, **wrong})
)
admin_calls = st.one_of(
    st.tuples(st.just(("POST", "/api/v1/releases")), st.fixed_dictionaries(
        {"version": versions, "synthetic": st.just(True)},
        optional={"channel": channels, "image_size": st.integers(-1, 5000)})),
    st.tuples(versions.map(lambda v: ("PUT", "/api/v1/channels/{}")), st.fixed_dictionaries({"version": versions})),
    st.tuples(versions.map(lambda v: ("POST", f"/api/v1/releases/{quote(v, safe='')}/promote")),
              st.fixed_dictionaries({"to": channels})),
    st.tuples(st.just(("POST", "/api/v1/groups")), st.fixed_dictionaries(
        {"id": path_values, "name": texts, "track": path_values, "channel": channels},
        optional={"policy": policies})),
    st.tuples(channels.map(lambda g: ("PUT", f"/api/v1/groups/{quote(g, safe='')}/policy")), policies),
    st.tuples(channels.flatmap(lambda g: st.sampled_from(
        [("POST", f"/api/v1/groups/{quote(g, safe='')}/pause"), ("POST", f"/api/v1/groups/{quote(g, safe='')}/resume")])),
        st.just({})),
)  # fmt: skip


@settings(FUZZ, max_examples=300)
@given(call=admin_calls, channel=channels)
def test_admin_calls_with_near_valid_bodies(
    http: httpx.Client, server: RunningServer, call: tuple[tuple[str, str], dict[str, Any]], channel: str
) -> None:
    (method, path), body = call
    path = path.replace("{}", quote(channel, safe="").replace(".", "%2E"))
    reply = http.request(method, path, json=body, headers={"Authorization": f"Bearer {server.token}"})
    record("api_requests_fuzzed", suite="fuzz")
    record(f"api_status_{reply.status_code}", suite="fuzz")
    check_reply(method, "/api/v1/admin", reply)


def mutate(base: bytes, ops: list[tuple[int, int, bytes]]) -> bytes:
    data = bytearray(base)
    for kind, at, chunk in ops:
        at %= max(len(data), 1)
        if kind == 0:
            data[at : at + len(chunk)] = chunk
        elif kind == 1:
            data[at:at] = chunk
        else:
            del data[at : at + len(chunk) + 1]
    return bytes(data)


@FUZZ
@given(
    ops=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 10_000), st.sampled_from(
            [b"<", b">", b"&", b'"', b"\x00", b"<!DOCTYPE x [<!ENTITY a 'b'>]>", b"&a;", b"3.0", b"2.0",
             b'eventtype="3" eventresult="0" errorcode="-1"', b"x" * 70_000, b"\xff\xfe", b"</app>", b"<app>"]
        ) | st.binary(max_size=16)),
        min_size=1, max_size=4,
    ),
)  # fmt: skip
def test_omaha_route_answers_200_or_400_only(http: httpx.Client, ops: list[tuple[int, int, bytes]]) -> None:
    body = mutate(UPDATE_ENGINE_REQUEST, ops)
    reply = http.post("/v1/update/", content=body)
    record("omaha_http_bodies_fuzzed", suite="fuzz")
    record(f"omaha_status_{reply.status_code}", suite="fuzz")
    assert reply.status_code in (200, 400), reply.text[:200]
    if reply.status_code == 400:
        assert reply.text.startswith("bad omaha request: "), reply.text[:200]
    else:
        assert reply.text.startswith("<?xml"), reply.text[:200]


def test_server_is_healthy_after_the_fuzz(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/healthz", timeout=10).json() == {"status": "ok", "db": "ok"}
    reply = httpx.get(f"{server.url}/api/v1/instances", timeout=10)
    assert reply.status_code == 200
