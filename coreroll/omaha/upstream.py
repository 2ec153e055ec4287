"""The Omaha client of an upstream sync (``coreroll server --sync``), as Nebraska's syncer speaks it.

- ``sync_request(channel, board, version, machineid, bootid) -> bytes``: the update_engine request of
  ``coreroll.omaha.client.build_request`` with ``updaterversion``/``version``
  ``CoreOSUpdateEngine-0.1.0.0`` and ``installsource="scheduler"`` (the pair by which Nebraska tells a
  syncer from a node: backend/pkg/omaha/omaha.go ``isSyncerClient``), an ``<updatecheck>`` only (no
  ping, no event: nothing to report), and ``multi_manifest_ok="true"`` on ``<app>``, so upstream sends
  every floor between ``version`` and its target instead of answering ``noupdate`` (omaha.go refuses
  a syncer without it when floors exist).
- ``parse_sync_answer(body) -> UpstreamAnswer``: the answer's app status, updatecheck status, every
  ``urls/url@codebase`` and each ``<manifest>`` (``version``, ``is_floor``, ``floor_reason``,
  ``is_target``, its ``<package>``s and the postinstall action's ``sha256``), attribute values as
  sent (``coreroll.server.sync_plan`` checks them, so one bad manifest does not hide the others).
  Refused with ``OmahaParseError`` (the reason names what): an empty body, XML that is not well
  formed, any DOCTYPE, over ``MAX_ANSWER`` bytes, no ``<app>``, more than ``MAX_MANIFESTS``
  manifests or ``MAX_PACKAGES`` packages in one. update_engine itself reads only the first manifest
  (omaha_request_action.cc ``ParseManifest``), so several are for syncers only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from lxml import etree

from coreroll.omaha.client import build_request
from coreroll.omaha.messages import OmahaParseError
from coreroll.omaha.xmlsafe import parse_untrusted_xml, short

SYNCER_VERSION: Final = "CoreOSUpdateEngine-0.1.0.0"
MAX_ANSWER: Final = 1024 * 1024  # go-omaha's client cap
MAX_MANIFESTS: Final = 64
MAX_PACKAGES: Final = 64


@dataclass(frozen=True, slots=True)
class UpstreamPackage:
    """One ``<package>``: the first of a manifest is the payload, the others its extras (as sent)."""

    name: str
    size: str
    sha1: str  # ``hash``: base64 SHA-1
    sha256_hex: str  # ``hash_sha256`` (extras): hex SHA-256, "" when absent


@dataclass(frozen=True, slots=True)
class UpstreamManifest:
    version: str
    is_floor: bool
    floor_reason: str
    is_target: bool
    packages: tuple[UpstreamPackage, ...]
    postinstall_sha256: str  # base64 SHA-256 of the payload, "" when there is no postinstall action


@dataclass(frozen=True, slots=True)
class UpstreamAnswer:
    app_status: str
    status: str  # the updatecheck's: "ok", "noupdate", an error string, "" when absent
    codebases: tuple[str, ...]
    manifests: tuple[UpstreamManifest, ...]


def sync_request(channel: str, board: str, version: str, machineid: str, bootid: str) -> bytes:
    return build_request(
        version=version, track=channel, machineid=machineid, bootid=bootid, oem="", oemversion="",
        alephversion=version, board=board, installsource="scheduler", ping=False, updatecheck=True,
        updater_version=SYNCER_VERSION, multi_manifest_ok=True,
    )  # fmt: skip


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"  # Go's encoding/xml writes bools as "true"


def _manifest(element: etree._Element, number: int) -> UpstreamManifest:
    packages = element.findall("packages/package")
    if len(packages) > MAX_PACKAGES:
        raise OmahaParseError(f"manifest {number} has more than {MAX_PACKAGES} packages")
    postinstall = next(
        (a.get("sha256", "") for a in element.findall("actions/action") if a.get("event") == "postinstall"),
        "",
    )
    return UpstreamManifest(
        version=element.get("version", ""),
        is_floor=_true(element.get("is_floor")),
        floor_reason=element.get("floor_reason", ""),
        is_target=_true(element.get("is_target")),
        packages=tuple(
            UpstreamPackage(p.get("name", ""), p.get("size", ""), p.get("hash", ""), p.get("hash_sha256", ""))
            for p in packages
        ),
        postinstall_sha256=postinstall,
    )


def parse_sync_answer(body: bytes) -> UpstreamAnswer:
    if not body:
        raise OmahaParseError("empty answer")
    root = parse_untrusted_xml(body, MAX_ANSWER, "answer")
    if root.tag != "response":
        raise OmahaParseError(short(f"root element is <{root.tag}>, expected <response>"))
    app = root.find("app")
    if app is None:
        raise OmahaParseError("answer has no <app>")
    check = app.find("updatecheck")
    manifests = [] if check is None else check.findall("manifest")
    if len(manifests) > MAX_MANIFESTS:
        raise OmahaParseError(f"answer has more than {MAX_MANIFESTS} manifests")
    return UpstreamAnswer(
        app_status=app.get("status", ""),
        status="" if check is None else check.get("status", ""),
        codebases=() if check is None else tuple(u.get("codebase", "") for u in check.findall("urls/url")),
        manifests=tuple(_manifest(m, n) for n, m in enumerate(manifests, 1)),
    )
