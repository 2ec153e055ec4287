"""From an upstream answer to the releases a sync records for one board (pure).

``plan_answer(answer, board) -> SyncPlan``: each ``<manifest>`` becomes a ``PlannedRelease`` (its
version, floor flag and reason, whether it is the target, the payload and the extras, each with
its URL, size, SHA-1 and SHA-256 checked by ``coreroll.server.url_payloads``) or a
``RefusedRelease`` with the reason. The target, as Nebraska's syncer picks it
(backend/pkg/syncer/syncer.go ``processMultiManifestUpdate``): the manifest marked ``is_target``,
else the last one that is not a floor, else none (all floors: the channel stays where it is); a
single manifest is the target.

Where each file is: the codebase (the first ``urls/url``) joined with the package name, as
update_engine and flatcar-postinst do. A multi-manifest answer has one ``<urls>``, the target's
(Nebraska's omaha.go ``prepareMultiManifestUpdateCheck``), while Flatcar keeps each release in a
directory of its own (``.../amd64-usr/3732.0.0/``): so for a floor, a path segment of the codebase
equal to the target's version is replaced by the floor's version (``floor_codebase``). Where there
is none, the codebase is used as is, and the bytes' hashes (hosted mode) or the file's size
(``Content-Length``, URL mode) tell a wrong guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from coreroll.omaha.upstream import UpstreamAnswer, UpstreamManifest
from coreroll.omaha.xmlsafe import short
from coreroll.server.catalog import CatalogError
from coreroll.server.url_payloads import FileMetadata, check_metadata, sha256_b64
from coreroll.server.versions import valid_version, version_key

_DIGITS = re.compile(r"^[0-9]{1,19}$")


@dataclass(frozen=True, slots=True)
class PlannedRelease:
    version: str
    floor: bool
    floor_reason: str | None
    target: bool
    payload: FileMetadata
    extras: tuple[FileMetadata, ...]


@dataclass(frozen=True, slots=True)
class RefusedRelease:
    version: str  # as upstream sent it (shown through short())
    reason: str
    floor: bool
    target: bool


@dataclass(slots=True)
class SyncPlan:
    releases: list[PlannedRelease] = field(default_factory=list)  # floors first, in version order
    refused: list[RefusedRelease] = field(default_factory=list)
    target: str | None = None


def floor_codebase(codebase: str, target: str, version: str) -> str:
    """``codebase`` with its last path segment equal to ``target`` replaced by ``version``."""
    head, sep, path = codebase.partition("://")
    host, slash, rest = path.partition("/")
    segments = rest.split("/")
    for index in range(len(segments) - 1, -1, -1):
        if segments[index] == target:
            segments[index] = version
            return f"{head}{sep}{host}{slash}{'/'.join(segments)}"
    return codebase


def _size(raw: str) -> int | str:
    return int(raw) if _DIGITS.match(raw.strip()) else raw  # check_metadata refuses a non-integer


def _release(manifest: UpstreamManifest, codebase: str, target: bool) -> PlannedRelease:
    version = manifest.version
    if not valid_version(version):
        raise CatalogError(400, f"version {short(version, 70)!r} is not a version")
    if not manifest.packages:
        raise CatalogError(400, "the manifest has no package")
    if not manifest.postinstall_sha256:
        raise CatalogError(
            400, "the manifest has no postinstall action with a sha256 (update_engine needs it)"
        )
    base = codebase if codebase.endswith("/") else codebase + "/"
    first, *rest = manifest.packages
    payload = check_metadata(base + first.name, _size(first.size), manifest.postinstall_sha256,
                             first.sha1, "payload ")  # fmt: skip
    if first.sha256_hex and sha256_b64(first.sha256_hex, "payload hash_sha256") != payload.sha256_b64:
        raise CatalogError(400, "the payload's hash_sha256 and the postinstall sha256 differ")
    extras = []
    for number, extra in enumerate(rest, 1):
        if not extra.sha256_hex:
            raise CatalogError(400, f"extra {short(extra.name, 60)!r} has no hash_sha256 (ue-rs needs it)")
        extras.append(check_metadata(base + extra.name, _size(extra.size), extra.sha256_hex,
                                     extra.sha1, f"extra {number} "))  # fmt: skip
    names = [payload.filename, *(e.filename for e in extras)]
    if len(set(names)) != len(names):
        raise CatalogError(400, "two packages of the manifest have one name")
    reason = manifest.floor_reason.strip() or None
    return PlannedRelease(version, manifest.is_floor, short(reason, 500) if reason else None, target,
                          payload, tuple(extras))  # fmt: skip


def _target(manifests: tuple[UpstreamManifest, ...]) -> UpstreamManifest | None:
    if len(manifests) == 1:
        return manifests[0]
    explicit = next((m for m in manifests if m.is_target), None)
    if explicit is not None:
        return explicit
    return next((m for m in reversed(manifests) if not m.is_floor), None)


def plan_answer(answer: UpstreamAnswer) -> SyncPlan:
    """The releases of an ``ok`` answer (see the module docstring)."""
    plan = SyncPlan()
    target = _target(answer.manifests)
    plan.target = target.version if target is not None else None
    codebase = answer.codebases[0] if answer.codebases else ""
    seen: set[str] = set()
    for manifest in answer.manifests:
        is_target = manifest is target
        here = codebase
        if target is not None and not is_target and manifest.version != target.version:
            here = floor_codebase(codebase, target.version, manifest.version)
        try:
            if not codebase:
                raise CatalogError(400, "the answer has no urls/url codebase")
            if manifest.version in seen:
                raise CatalogError(400, "the answer lists this version twice")
            plan.releases.append(_release(manifest, here, is_target))
        except CatalogError as exc:
            plan.refused.append(RefusedRelease(manifest.version, exc.message, manifest.is_floor, is_target))
        seen.add(manifest.version)
    plan.releases.sort(key=lambda r: (r.target, version_key(r.version)))
    return plan
