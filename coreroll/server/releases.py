"""Publishing releases: synthetic signed payloads, and uploaded files.

``Publisher(settings, catalog)``:
- ``keys()`` loads the server's signing key pair from ``<data>/keys`` (generated there, private
  0600, on first use); ``public_key_path`` is what agents are given to verify payloads.
- ``await publish_synthetic(version, channel, image_size)``: builds a deterministic image for the
  version, signs it as a ``CrAU`` container and publishes it.
- ``await publish_upload(chunks, version, channel, filename)``: streams an upload to disk while
  hashing it. A coreroll container (``sniff_payload == "coreroll"``) must verify with the server's
  key and carry ``version`` (else ``CatalogError(422)``, nothing stored); anything else (a real
  Flatcar ``update.gz``) is opaque: the server only records size, sha256 and sha1.
Files live at ``<data>/packages/<version>/<filename>``; an existing release is never overwritten
with different bytes (409).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from coreroll.omaha.payload import (
    PRIVATE_KEY_NAME,
    PUBLIC_KEY_NAME,
    KeyFileError,
    PayloadError,
    b64,
    build_payload,
    load_private_key,
    load_public_key,
    payload_hashes,
    sniff_payload,
    verify_payload,
    write_keypair,
)
from coreroll.server.catalog import Catalog, CatalogError, Release
from coreroll.server.settings import ServerSettings
from coreroll.server.versions import next_free_version, valid_version

MAX_UPLOAD = 4 * 1024**3
MAX_SIGNED = 512 * 1024**2  # a coreroll container is verified in memory
MAX_SYNTHETIC = 64 * 1024**2
_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
DEFAULT_FILENAME = "update.gz"


def synthetic_image(version: str, size: int) -> bytes:
    """A deterministic stand-in for a USR partition image: a header naming the version, then filler."""
    header = f"coreroll synthetic usr image {version}\n".encode()
    seed = hashlib.sha256(header).digest()
    filler = (seed * (size // len(seed) + 1))[: max(0, size - len(header))]
    return header + filler


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _place(tmp: Path, final: Path, replace_existing: bool) -> None:
    if replace_existing or not final.exists():
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)


class Publisher:
    def __init__(self, settings: ServerSettings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._keys: tuple[rsa.RSAPrivateKey, rsa.RSAPublicKey] | None = None
        self._key_lock = threading.Lock()

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

    def _check(self, version: str, channel: str | None, filename: str) -> None:
        if not isinstance(version, str) or not valid_version(version):
            raise CatalogError(400, f"version {version!r}: use 1-64 of letters, digits, '.', '+', '_', '-'")
        if channel is not None and channel not in self.catalog.channels:
            raise CatalogError(404, f"no channel {channel!r}")
        if not _FILENAME.match(filename):
            raise CatalogError(
                400, f"filename {filename!r}: a plain file name of letters, digits, '.', '_', '-'"
            )

    async def publish_synthetic(
        self, version: str | None, channel: str | None, image_size: int = 65536
    ) -> dict[str, Any]:
        """``version=None`` picks today's CoreOS version (major = days since 2013-07-13)."""
        if version is None:
            version = next_free_version(self.catalog.releases)
        self._check(version, channel, DEFAULT_FILENAME)
        if not 1 <= image_size <= MAX_SYNTHETIC:
            raise CatalogError(400, f"image_size must be between 1 and {MAX_SYNTHETIC}")
        private, _ = await asyncio.to_thread(self.keys)
        data = await asyncio.to_thread(build_payload, synthetic_image(version, image_size), version, private)
        size, sha256, sha1 = payload_hashes(data)
        tmp = await asyncio.to_thread(self._write_temp, data)
        return await self._install(
            tmp, Release(version, DEFAULT_FILENAME, size, sha256, sha1, True, 0.0), channel
        )

    def _write_temp(self, data: bytes) -> Path:
        self.settings.packages_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.settings.packages_dir, prefix=".upload-")
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
    ) -> dict[str, Any]:
        self._check(version, channel, filename)
        self.settings.packages_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.settings.packages_dir, prefix=".upload-")
        tmp = Path(name)
        try:
            sha256, sha1, size, head = hashlib.sha256(), hashlib.sha1(), 0, b""
            with os.fdopen(fd, "wb") as handle:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > MAX_UPLOAD:
                        raise CatalogError(413, f"upload is over {MAX_UPLOAD} bytes")
                    if len(head) < 16:
                        head += chunk[: 16 - len(head)]
                    sha256.update(chunk)
                    sha1.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            if size == 0:
                raise CatalogError(400, "upload is empty")
            signed = sniff_payload(head) == "coreroll"
            if signed:
                await self._verify(tmp, version, size)
            release = Release(version, filename, size, b64(sha256.digest()), b64(sha1.digest()), signed, 0.0)
            return await self._install(tmp, release, channel)
        finally:
            _discard(tmp)

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

    async def _install(self, tmp: Path, release: Release, channel: str | None) -> dict[str, Any]:
        try:
            existing = self.catalog.release(release.version)
            if existing is not None and (existing.sha256, existing.size) != (release.sha256, release.size):
                raise CatalogError(409, f"release {release.version} exists with different content")
            release.created_at = existing.created_at if existing else self.settings.clock()
            if existing is not None:
                release.filename, release.signed = existing.filename, existing.signed
            final = self.settings.packages_dir / release.version / release.filename
            await asyncio.to_thread(_place, tmp, final, existing is None)
            return await self.catalog.add_release(release, channel)
        finally:
            _discard(tmp)
