"""Publishing releases: synthetic signed payloads, uploaded payloads per board, extra packages.

``Publisher(settings, catalog)``:
- ``keys()`` loads the server's signing key pair from ``<data>/keys`` (generated there, private
  0600, on first use); ``public_key_path`` is what agents are given to verify payloads.
- ``await publish_synthetic(version, channel, image_size, board)``: builds a deterministic image
  for the version, signs it as a coreroll container and publishes it (offered to agents only).
- ``await publish_upload(chunks, version, channel, filename, board, kind, opaque)``: streams an
  upload to a ``.upload-*`` temp file while hashing and checking it (``coreroll.server.upload``),
  then publishes it atomically (``Catalog.publish_file``). A payload (``kind="payload"``) must be either
  - a whole update_engine payload: ``CrAU`` version 1 that update_engine would apply (header,
    manifest, operation data, size, a version 2 signature; signed by ``--payload-key`` when the
    server has one), offered to every node, or
  - a coreroll container (``CrAU`` + version 100) that verifies with the server's key and carries
    ``version`` (agents only), or
  - any other bytes with ``opaque=True`` (agents only: they install the bytes as an image);
  anything else is refused (422) and nothing is stored. An extra package (``kind="extra"``, e.g.
  ``oem-azure.gz``) must be a CrAU payload download_sysext would accept; it is stored next to the
  board's payload; with a channel, it is refused (409, before the body is read) while the release
  has no payload (``Catalog.require_payload``).
- ``payload_key``: the public key of ``--payload-key`` (None without), loaded at construction.
  Both return ``(release object, created)``; the same bytes again give ``created`` False.
- ``clean_temp_files()`` (server start): removes ``.upload-*`` files a crash left behind, logged.
- ``await adopt_legacy()`` (server start): a release stored before boards existed gets its file
  recorded as its ``amd64-usr`` payload, its format read from the file's header.
Files live at ``<data>/packages/<version>/<board>/<filename>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from coreroll.omaha.payload import (
    PRIVATE_KEY_NAME,
    PUBLIC_KEY_NAME,
    UPDATE_ENGINE_PAYLOAD_VERSION,
    KeyFileError,
    PayloadError,
    build_payload,
    header_version,
    load_private_key,
    load_public_key,
    payload_hashes,
    verify_payload,
    write_keypair,
)
from coreroll.server.catalog import EXTRA, PAYLOAD, Catalog, CatalogError, Release, ReleaseFile
from coreroll.server.settings import ServerSettings
from coreroll.server.upload import Upload, UploadSink, describe
from coreroll.server.url_payloads import FILENAME, FileMetadata, directory_of
from coreroll.server.versions import DEFAULT_BOARD, next_free_version, valid_board, valid_version

log = logging.getLogger("coreroll.server")
TEMP_PREFIX = ".upload-"

_BATCH = 1024 * 1024  # bytes handed to the worker thread at a time
MAX_SIGNED = 512 * 1024**2  # a coreroll container is verified in memory
MAX_SYNTHETIC = 64 * 1024**2
DEFAULT_FILENAME = "update.gz"
URL_FORMATS = ("update_engine", "opaque")  # what a URL-mode payload can be said to be


def synthetic_image(version: str, size: int) -> bytes:
    """A deterministic stand-in for a USR partition image: a header naming the version, then filler."""
    header = f"coreroll synthetic usr image {version}\n".encode()
    seed = hashlib.sha256(header).digest()
    filler = (seed * (size // len(seed) + 1))[: max(0, size - len(header))]
    return header + filler


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _compare(filename: str, upload: Upload, expected: FileMetadata) -> None:
    """The downloaded bytes against what their source declared (size, SHA-256, SHA-1)."""
    found = (upload.size, upload.sha256_b64, upload.sha1_b64)
    declared = (expected.size, expected.sha256_b64, expected.sha1_b64)
    for name, got, want in zip(("size", "sha256", "sha1"), found, declared, strict=True):
        if got != want:
            raise CatalogError(
                422,
                f"{filename} from {expected.url} refused: its {name} is {got}, the source declared {want}",
            )


def _place(tmp: Path, final: Path) -> None:
    """Move ``tmp`` to ``final``; only called for a file no release has (a leftover is replaced)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)


class Publisher:
    def __init__(self, settings: ServerSettings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._keys: tuple[rsa.RSAPrivateKey, rsa.RSAPublicKey] | None = None
        self._key_lock = threading.Lock()
        self.payload_key = load_public_key(settings.payload_key) if settings.payload_key else None
        if self.payload_key is None:
            log.info("no --payload-key: signatures of uploaded payloads are checked for presence only")
        else:
            log.info("uploaded payloads and extras must be signed by --payload-key %s", settings.payload_key)

    @property
    def public_key_path(self) -> Path:
        return self.settings.key_dir / PUBLIC_KEY_NAME

    def keys(self) -> tuple[rsa.RSAPrivateKey, rsa.RSAPublicKey]:
        with self._key_lock:
            if self._keys is None:
                private = self.settings.key_dir / PRIVATE_KEY_NAME
                try:
                    if not private.exists():
                        write_keypair(self.settings.key_dir)
                    self._keys = (load_private_key(private), load_public_key(self.public_key_path))
                except (KeyFileError, OSError, ValueError) as exc:
                    raise CatalogError(500, f"signing key unusable: {exc}") from exc
            return self._keys

    def _check(self, version: str, channel: str | None, filename: str, board: str) -> None:
        if not isinstance(version, str) or not valid_version(version):
            raise CatalogError(400, f"version {version!r}: use 1-64 of letters, digits, '.', '+', '_', '-'")
        if channel is not None and channel not in self.catalog.channels:
            raise CatalogError(404, f"no channel {channel!r}")
        if not FILENAME.match(filename):
            raise CatalogError(
                400, f"filename {filename!r}: a plain file name of letters, digits, '.', '_', '-'"
            )
        if not isinstance(board, str) or not valid_board(board):
            raise CatalogError(400, f"board {board!r}: expected amd64-usr, arm64-usr or another <arch>-usr")

    def _same_place(self, version: str, board: str, url: str | None) -> None:
        """A board's payload and extras share one codebase (a node fetches each extra from the
        payload's directory, as flatcar-postinst does): hosted here together, or in one URL directory."""
        where = None if url is None else directory_of(url)
        for other in self.catalog.files.get(version, ()):
            if other.board != board:
                continue
            there = None if other.url is None else directory_of(other.url)
            if there != where:
                raise CatalogError(
                    409,
                    f"release {version} {board}: {other.filename} is "
                    + (f"served from {there}" if there else "hosted on this server")
                    + "; a board's payload and extras must be in one place (a node downloads the "
                    "extras from the payload's directory)",
                )

    def _path(self, version: str, board: str, filename: str, kind: str) -> str:
        payload = self.catalog.payload(version, board) if kind == EXTRA else None
        directory = payload.directory if payload is not None else f"{version}/{board}"
        return f"{directory}/{filename}"

    async def publish_synthetic(
        self,
        version: str | None,
        channel: str | None,
        image_size: int = 65536,
        board: str = DEFAULT_BOARD,
    ) -> tuple[dict[str, Any], bool]:
        """``version=None`` picks today's CoreOS version (major = days since 2013-07-13)."""
        if version is None:
            version = next_free_version(self.catalog.releases)
        self._check(version, channel, DEFAULT_FILENAME, board)
        if not 1 <= image_size <= MAX_SYNTHETIC:
            raise CatalogError(400, f"image_size must be between 1 and {MAX_SYNTHETIC}")
        private, _ = await asyncio.to_thread(self.keys)
        data = await asyncio.to_thread(build_payload, synthetic_image(version, image_size), version, private)
        size, sha256, sha1 = payload_hashes(data)
        tmp = await asyncio.to_thread(self._write_temp, data)
        return await self._install(tmp, version, board, DEFAULT_FILENAME, PAYLOAD, "coreroll",
                                   (size, sha256, sha1), channel)  # fmt: skip

    def _write_temp(self, data: bytes) -> Path:
        self.settings.packages_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.settings.packages_dir, prefix=TEMP_PREFIX)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return Path(name)

    async def publish_upload(
        self,
        chunks: AsyncIterator[bytes],
        version: str,
        channel: str | None,
        filename: str = DEFAULT_FILENAME,
        board: str = DEFAULT_BOARD,
        kind: str = PAYLOAD,
        opaque: bool = False,
        expected: FileMetadata | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """``expected``: what the source declared (the upstream sync); other bytes are refused (422)."""
        self._check(version, channel, filename, board)
        if kind not in (PAYLOAD, EXTRA):
            raise CatalogError(400, f"kind {kind!r}: expected {PAYLOAD!r} or {EXTRA!r}")
        if kind == EXTRA and channel is not None:
            self.catalog.require_payload(version)  # refused before the upload is read
        self._same_place(version, board, None)
        self.settings.packages_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.settings.packages_dir, prefix=TEMP_PREFIX)
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                sink = UploadSink(handle, filename, kind, opaque, self.payload_key)
                batch: list[bytes] = []
                batched = 0
                async for chunk in chunks:
                    batch.append(chunk)
                    batched += len(chunk)
                    if batched >= _BATCH:
                        await asyncio.to_thread(sink.write, b"".join(batch))
                        batch, batched = [], 0
                if batch:
                    await asyncio.to_thread(sink.write, b"".join(batch))
                upload = await asyncio.to_thread(sink.finish)
            if expected is not None:
                _compare(filename, upload, expected)
            if upload.format == "coreroll":
                await self._verify(tmp, version, upload.size)
            if upload.checked is not None:
                log.info("%s %s %s: %s", version, board, filename, describe(upload.checked))
            hashes = (upload.size, upload.sha256_b64, upload.sha1_b64)
            return await self._install(tmp, version, board, filename, kind, upload.format, hashes, channel)
        finally:
            _discard(tmp)

    async def publish_url(
        self,
        meta: FileMetadata,
        version: str,
        channel: str | None,
        board: str = DEFAULT_BOARD,
        kind: str = PAYLOAD,
        fmt: str = "update_engine",
    ) -> tuple[dict[str, Any], bool]:
        """Record a file served at ``meta.url`` (URL mode): nothing is stored here, nodes download it there."""
        self._check(version, channel, meta.filename, board)
        if kind not in (PAYLOAD, EXTRA):
            raise CatalogError(400, f"kind {kind!r}: expected {PAYLOAD!r} or {EXTRA!r}")
        if kind == EXTRA:
            fmt = EXTRA
        elif fmt not in URL_FORMATS:
            raise CatalogError(400, f"format {fmt!r}: expected one of {', '.join(URL_FORMATS)}")
        self._same_place(version, board, meta.url)
        now = self.settings.clock()
        file = ReleaseFile(version, board, meta.filename, kind, f"{version}/{board}/{meta.filename}",
                           meta.size, meta.sha256_b64, meta.sha1_b64, fmt, now, meta.url)  # fmt: skip
        release = Release(version, meta.filename, meta.size, meta.sha256_b64, meta.sha1_b64, False, now)

        async def nothing_to_place() -> None:
            return None

        return await self.catalog.publish_file(release, file, channel, nothing_to_place)

    async def _verify(self, path: Path, version: str, size: int) -> None:
        if size > MAX_SIGNED:
            raise CatalogError(413, f"a signed payload over {MAX_SIGNED} bytes cannot be verified")
        _, public = await asyncio.to_thread(self.keys)
        data = await asyncio.to_thread(path.read_bytes)
        try:
            contents = await asyncio.to_thread(verify_payload, data, public)
        except PayloadError as exc:
            raise CatalogError(
                422,
                f"payload refused: {exc} (errorcode {int(exc.code)} {exc.code.name}); "
                f"is it signed with this server's key {self.public_key_path}?",
            ) from exc
        if contents.version != version:
            raise CatalogError(422, f"payload carries version {contents.version!r}, not {version!r}")

    async def _install(
        self,
        tmp: Path,
        version: str,
        board: str,
        filename: str,
        kind: str,
        fmt: str,
        hashes: tuple[int, str, str],
        channel: str | None,
    ) -> tuple[dict[str, Any], bool]:
        size, sha256, sha1 = hashes
        now = self.settings.clock()
        path = self._path(version, board, filename, kind)
        file = ReleaseFile(version, board, filename, kind, path, size, sha256, sha1, fmt, now)
        release = Release(version, filename, size, sha256, sha1, fmt == "coreroll", now)
        final = self.settings.packages_dir / path
        placed = False

        async def place() -> None:
            nonlocal placed
            await asyncio.to_thread(_place, tmp, final)
            placed = True

        try:
            return await self.catalog.publish_file(release, file, channel, place)
        except BaseException:
            if placed:  # the transaction did not commit: no release refers to these bytes
                final.unlink(missing_ok=True)
            raise
        finally:
            _discard(tmp)

    def clean_temp_files(self) -> int:
        """Remove ``.upload-*`` files left by a crash mid-upload; returns how many."""
        removed = 0
        for leftover in sorted(self.settings.packages_dir.glob(TEMP_PREFIX + "*")):
            try:
                size = leftover.stat().st_size
                leftover.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("cannot remove leftover upload %s: %s", leftover, exc)
                continue
            removed += 1
            log.warning("removed leftover upload %s (%d bytes) from an interrupted publish", leftover, size)
        return removed

    async def adopt_legacy(self) -> int:
        """Record each release stored before boards existed as its ``amd64-usr`` payload."""
        adopted: list[ReleaseFile] = []
        for release in self.catalog.releases.values():
            if self.catalog.files.get(release.version):
                continue
            path = f"{release.version}/{release.filename}"
            if release.signed:
                fmt = "coreroll"
            else:
                try:
                    with (self.settings.packages_dir / path).open("rb") as handle:
                        head = handle.read(16)
                except OSError:
                    head = b""
                fmt = "update_engine" if header_version(head) == UPDATE_ENGINE_PAYLOAD_VERSION else "opaque"
            adopted.append(ReleaseFile(release.version, DEFAULT_BOARD, release.filename, PAYLOAD, path,
                                       release.size, release.sha256, release.sha1, fmt, release.created_at))  # fmt: skip
        recorded = await self.catalog.adopt_files(adopted) if adopted else 0
        if recorded:
            log.info("recorded %d release(s) from before boards as amd64-usr payloads", recorded)
        return recorded
