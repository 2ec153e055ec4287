"""Shared by the Omaha tests: the update_engine request of reference 1.2, byte for byte, its variants
as update_engine builds them (arm64, no machine id, a check carrying a 3/9 "deferred" event), and
the byte-level mutation the fuzz tests apply to valid inputs."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Reference 1.2 (flatcar/update_engine omaha_request_action.cc GetRequestXml), values as shown there.
UPDATE_ENGINE_REQUEST = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<request protocol="3.0" version="update_engine-0.4.10" updaterversion="update_engine-0.4.10"'
    b' installsource="scheduler" ismachine="1">\n'
    b'    <os version="Chateau" platform="CoreOS" sp="3975.2.1_x86_64"></os>\n'
    b'    <app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" version="3975.2.1" track="stable"'
    b' bootid="{3c9c0e11-...}" oem="ami" oemversion="..." alephversion="3510.2.0"'
    b' machineid="9ce7a919806c4f3785eb6d260345ac4a" machinealias="" lang="en-US" board="amd64-usr"'
    b' hardware_class="" delta_okay="false" >\n'
    b'        <ping active="1"></ping>\n'
    b"        <updatecheck></updatecheck>\n"
    b'        <event eventtype="3" eventresult="2" previousversion=""></event>\n'
    b"    </app>\n"
    b"</request>\n"
)

# The same request with the app body swapped, for event-only and ping-only shapes.
_CHECK_BODY = (
    b'        <ping active="1"></ping>\n'
    b"        <updatecheck></updatecheck>\n"
    b'        <event eventtype="3" eventresult="2" previousversion=""></event>\n'
)


def with_app_body(body: bytes) -> bytes:
    """UPDATE_ENGINE_REQUEST with the lines inside <app> replaced by ``body``."""
    return UPDATE_ENGINE_REQUEST.replace(_CHECK_BODY, body)


# An arm64 node: update_engine sends board="arm64-usr" and sp="<version>_aarch64" (uname -m).
UPDATE_ENGINE_ARM64_REQUEST = UPDATE_ENGINE_REQUEST.replace(
    b'board="amd64-usr"', b'board="arm64-usr"'
).replace(b'sp="3975.2.1_x86_64"', b'sp="3975.2.1_aarch64"')

# /etc/machine-id empty (first boot, a broken image): update_engine still sends the attribute.
UPDATE_ENGINE_NO_MACHINE_ID = UPDATE_ENGINE_REQUEST.replace(
    b'machineid="9ce7a919806c4f3785eb6d260345ac4a"', b'machineid=""'
)

# A check whose event is 3/9 (UpdateDeferred) with errorcode 40 (DeferredForBackoff): update_engine
# writes an event whose result is not Success with its errorcode (GetAppBody), outside the 3/2 table.
UPDATE_ENGINE_DEFERRED_CHECK = with_app_body(
    b'        <ping active="1"></ping>\n'
    b"        <updatecheck></updatecheck>\n"
    b'        <event eventtype="3" eventresult="9" errorcode="40"></event>\n'
)


def mutate(base: bytes, ops: list[tuple[str, int, bytes]]) -> bytes:
    """``base`` with each (op, position, chunk) applied in turn: insert, replace, or delete."""
    data = bytearray(base)
    for op, pos, chunk in ops:
        pos = min(pos, len(data))
        if op == "insert":
            data[pos:pos] = chunk
        elif op == "replace":
            data[pos : pos + len(chunk)] = chunk
        else:
            del data[pos : pos + len(chunk)]
    return bytes(data)


def edit_lists(
    base_size: int, tokens: list[bytes], *, chunk_size: int, max_edits: int
) -> st.SearchStrategy[list[tuple[str, int, bytes]]]:
    """Lists of 1 to ``max_edits`` (op, position, chunk) edits for ``mutate``: a chunk is one of
    ``tokens`` or 1 to ``chunk_size`` random bytes, a position anywhere in a ``base_size`` input."""
    return st.lists(
        st.tuples(
            st.sampled_from(["replace", "insert", "delete"]),
            st.integers(min_value=0, max_value=base_size),
            st.sampled_from(tokens) | st.binary(min_size=1, max_size=chunk_size),
        ),
        min_size=1,
        max_size=max_edits,
    )


def fuzz_settings(max_examples: int) -> settings:
    """Hypothesis settings of the Omaha property tests: reproducible in CI (the corpus of edits is
    what varies), 0.5 s per example at most."""
    return settings(
        max_examples=max_examples,
        deadline=timedelta(milliseconds=500),
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=True,
    )
