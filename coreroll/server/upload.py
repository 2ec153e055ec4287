"""One uploaded file on its way to disk: its format, hashes and (for a CrAU payload) the whole-file check.

``payload_format(head, opaque)`` names a payload's format from its first 12 bytes: ``update_engine``
(``CrAU`` + version 1), ``coreroll`` (version 100, our signed container), ``opaque`` (other bytes,
only with ``opaque``); anything else is refused (422).

``UploadSink(handle, filename, kind, opaque, payload_key)`` gets the upload's bytes in pieces
(``write``, run in a worker thread so hashing never holds up the event loop) and writes them to
``handle`` while hashing them. An update_engine payload is read as update_engine reads it and an
extra package (``kind="extra"``: an OEM or extension sysext) as flatcar-postinst's download_sysext
reads it (``coreroll.omaha.crau``): a problem in the header, the manifest or an operation's data is
refused as soon as those bytes arrive; ``finish()`` then refuses a truncated file and checks the
signatures blob, and with ``payload_key`` (``coreroll server --payload-key``) the signature itself.
Nothing is kept in memory but the header, manifest and signatures blob. ``finish()`` returns
``Upload(format, size, sha256_b64, sha1_b64, checked)``; refusals are ``CatalogError(422)`` (413 past
``MAX_UPLOAD``) naming the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

from cryptography.hazmat.primitives.asymmetric import rsa

from coreroll.omaha.crau import CheckedPayload, PayloadChecker
from coreroll.omaha.crau_layout import PayloadRefused, Reader
from coreroll.omaha.payload import PAYLOAD_VERSION, UPDATE_ENGINE_PAYLOAD_VERSION, b64, header_version
from coreroll.server.catalog import EXTRA, CatalogError

MAX_UPLOAD: Final = 4 * 1024**3
HEAD_SIZE: Final = 12  # magic + format version


def payload_format(head: bytes, opaque: bool) -> str:
    """The format of a payload starting with ``head``: update_engine, coreroll or opaque; else 422."""
    found = header_version(head)
    if found == UPDATE_ENGINE_PAYLOAD_VERSION:
        return "update_engine"
    if found == PAYLOAD_VERSION:
        return "coreroll"
    if opaque:
        return "opaque"
    if found is not None:
        raise CatalogError(
            422,
            f"payload is CrAU version {found}: Flatcar's update_engine applies version "
            f"{UPDATE_ENGINE_PAYLOAD_VERSION} only",
        )
    raise CatalogError(
        422,
        f"not an update_engine payload: it starts with {head[:12]!r}, not b'CrAU' + version "
        f"{UPDATE_ENGINE_PAYLOAD_VERSION} (big-endian u64); to publish other bytes for coreroll "
        "agents only, pass opaque=true (release publish --opaque)",
    )


@dataclass(frozen=True, slots=True)
class Upload:
    format: str  # "update_engine" | "coreroll" | "opaque" | "extra"
    size: int
    sha256_b64: str
    sha1_b64: str
    checked: CheckedPayload | None  # the whole-file check of a CrAU payload or extra


def describe(checked: CheckedPayload) -> str:
    """How far the check went, for the log: operations, signatures, whether the key verified one."""
    signature = (
        "verified with --payload-key"
        if checked.signature_verified
        else "present, not verified (no --payload-key)"
    )
    return f"read as {checked.reader} reads it: {checked.operations} operations, signature {signature}"


class UploadSink:
    def __init__(
        self, handle: BinaryIO, filename: str, kind: str, opaque: bool, payload_key: rsa.RSAPublicKey | None
    ) -> None:
        self._handle = handle
        self._filename = filename
        self._kind = kind
        self._opaque = opaque
        self._payload_key = payload_key
        self._head = bytearray()
        self._format: str | None = None
        self._checker: PayloadChecker | None = None
        self._sha256: Any = hashlib.sha256()  # when no checker hashes the file
        self._sha1 = hashlib.sha1()
        self.size = 0

    def _refused(self, exc: PayloadRefused) -> CatalogError:
        what = "extra package" if self._kind == EXTRA else "payload"
        return CatalogError(422, f"{what} {self._filename} refused: {exc}")

    def _decide(self) -> None:
        """Name the format from the head, then send the head where the rest will go."""
        head = bytes(self._head)
        if self._kind == EXTRA:
            self._format = EXTRA
            self._checker = PayloadChecker(Reader.DOWNLOAD_SYSEXT, self._payload_key)
        else:
            self._format = payload_format(head, self._opaque)
            if self._format == "update_engine":
                self._checker = PayloadChecker(Reader.UPDATE_ENGINE, self._payload_key)
        self._head.clear()
        self._consume(head)

    def _consume(self, block: bytes) -> None:
        self._handle.write(block)
        self._sha1.update(block)
        if self._checker is None:
            self._sha256.update(block)
            return
        try:
            self._checker.feed(block)
        except PayloadRefused as exc:
            raise self._refused(exc) from None

    def write(self, block: bytes) -> None:
        """The next bytes of the upload (in a worker thread); raises CatalogError as soon as they are wrong."""
        self.size += len(block)
        if self.size > MAX_UPLOAD:
            raise CatalogError(413, f"upload is over {MAX_UPLOAD} bytes")
        if self._format is not None:
            self._consume(block)
            return
        self._head += block
        if len(self._head) >= HEAD_SIZE:
            self._decide()

    def finish(self) -> Upload:
        """After the last byte: flush to disk, then the end-of-file checks (size, signature)."""
        if self.size == 0:
            raise CatalogError(400, "upload is empty")
        if self._format is None:
            self._decide()  # a file shorter than a CrAU header
        self._handle.flush()
        os.fsync(self._handle.fileno())
        checked = None
        if self._checker is not None:
            try:
                checked = self._checker.finish()
            except PayloadRefused as exc:
                raise self._refused(exc) from None
            sha256 = b64(checked.sha256)
        else:
            sha256 = b64(self._sha256.digest())
        assert self._format is not None
        return Upload(self._format, self.size, sha256, b64(self._sha1.digest()), checked)
