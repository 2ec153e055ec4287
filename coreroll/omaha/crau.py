"""Checking a whole CrAU payload as it streams past, the way update_engine or download_sysext will read it.

``PayloadChecker(reader, public_key=None)`` takes the file in pieces (``feed``) and keeps nothing of
the operations' data in memory: it parses the header and manifest as soon as they have arrived and
refuses at once what the reader would refuse (layout rules: ``coreroll.omaha.crau_layout``), then
hashes each operation's data as it passes (update_engine: ``data_sha256_hash``; download_sysext: the
image the operations write, bunzip2'd, against ``new_partition_info.hash``), takes the SHA-256 of
everything before the signatures blob, and refuses any byte past the blob's end. ``finish()``
refuses a file shorter than its manifest says, then reads the ``Signatures`` blob:

- update_engine (``payload_signer.cc`` ``VerifySignatureBlob``) uses the first signature whose
  version is 2 (``kSignatureMessageCurrentVersion``); download_sysext (ue-rs
  ``parse_signature_data``) takes any signature that verifies.
- With ``public_key`` (``update-payload-key.pub.pem``) that signature must be RSA PKCS#1 v1.5 over
  the SHA-256 of every byte before the signatures blob (header, manifest, data), DigestInfo for
  SHA-256 inside the padding (update_engine: ``EVP_PKEY_verify_recover`` with ``EVP_sha256``; ue-rs:
  ``pkcs1v15::VerifyingKey<Sha256>::verify_prehash``), as long as the key (256 bytes for RSA-2048).
  Without a key only its presence is checked.

It returns ``CheckedPayload`` (size, SHA-256 of the whole file, counts, whether the signature was
verified) or raises ``PayloadRefused``. ``check_file(path, reader, public_key=None)`` runs it over a
file on disk in 1 MiB reads.
"""

from __future__ import annotations

import bz2
import enum
import hashlib
import hmac
import os
import struct
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from coreroll.omaha import update_metadata as um
from coreroll.omaha.codes import ErrorCode
from coreroll.omaha.crau_layout import (
    HEADER_SIZE,
    MAX_IMAGE,
    MAX_MANIFEST,
    Blob,
    Layout,
    PayloadRefused,
    Reader,
    plan,
)
from coreroll.omaha.payload import MAGIC
from coreroll.omaha.payload import UPDATE_ENGINE_PAYLOAD_VERSION as FORMAT_VERSION  # ue-rs reads no other

SIGNATURE_VERSION: Final = 2  # update_engine's kSignatureMessageCurrentVersion
_HEADER: Final = struct.Struct(">4sQQ")
_CHUNK: Final = 1024 * 1024
_ZEROS: Final = bytes(_CHUNK)


class _Section(enum.Enum):
    HEADER = enum.auto()
    MANIFEST = enum.auto()
    DATA = enum.auto()
    SIGNATURES = enum.auto()
    END = enum.auto()


@dataclass(frozen=True, slots=True)
class CheckedPayload:
    reader: Reader
    size: int
    sha256: bytes  # of the whole file
    operations: int
    signatures: int
    signature_verified: bool  # False: no key to verify with, only its presence was checked


class _ImageHasher:
    """download_sysext's image: each operation's output at its offset, gaps as zeros, front to back."""

    def __init__(self, refuse: Any) -> None:
        self._hash = hashlib.sha256()
        self._end = 0
        self._refuse = refuse

    def write(self, blob: Blob, offset: int, data: bytes) -> int:
        """Write ``data`` at ``blob.image_offset + offset``; returns the new offset within the blob."""
        if not data:
            return offset
        at = blob.image_offset + offset
        if at < self._end:
            raise self._refuse(
                f"operation {blob.operation} writes the image at byte {at}, before the end of what the "
                f"operations before it wrote ({self._end}); coreroll checks extension payloads that write "
                "their image front to back"
            )
        if at + len(data) > MAX_IMAGE:
            raise self._refuse(f"operation {blob.operation} writes the image past {MAX_IMAGE} bytes")
        while self._end < at:
            step = min(at - self._end, len(_ZEROS))
            self._hash.update(_ZEROS[:step])
            self._end += step
        self._hash.update(data)
        self._end += len(data)
        return offset + len(data)

    def digest(self) -> bytes:
        return self._hash.digest()


class PayloadChecker:
    def __init__(self, reader: Reader, public_key: rsa.RSAPublicKey | None = None) -> None:
        self.reader = reader
        self.public_key = public_key
        self._file_hash = hashlib.sha256()
        self._received = 0
        self._section = _Section.HEADER
        self._pending = bytearray()  # the header, then the manifest, then the signatures blob
        self._manifest_size = 0
        self._layout: Layout | None = None
        self._data_done = 0  # bytes of the data section seen
        self._next_blob = 0
        self._in_blob = False
        self._blob_hash: Any = None  # update_engine: data_sha256_hash of the current blob
        self._bunzip: Any = None  # download_sysext: decompressor of the current REPLACE_BZ blob
        self._written = 0  # download_sysext: output of the current blob so far
        self._image = _ImageHasher(self._refuse)
        self._signed_hash = b""  # SHA-256 of every byte before the signatures blob

    def _refuse(self, problem: str, code: ErrorCode | None = None) -> PayloadRefused:
        return PayloadRefused(self.reader, problem, code)

    # --- sections ---------------------------------------------------------------------------

    def _magic(self) -> None:
        """Refuse a file that does not open with ``CrAU`` as soon as its first bytes say so."""
        start = bytes(self._pending[: len(MAGIC)])
        if start != MAGIC[: len(start)]:
            raise self._refuse(f"the file starts with {bytes(self._pending[:12])!r}, not b'CrAU'",
                               ErrorCode.DownloadInvalidMetadataMagicString)  # fmt: skip

    def _header(self) -> None:
        self._magic()
        _, version, manifest_size = _HEADER.unpack(bytes(self._pending))
        if version != FORMAT_VERSION:
            raise self._refuse(f"CrAU format version {version}, not {FORMAT_VERSION}",
                               ErrorCode.DownloadInvalidMetadataMagicString)  # fmt: skip
        if manifest_size > MAX_MANIFEST:
            raise self._refuse(f"the header gives a manifest of {manifest_size} bytes, over {MAX_MANIFEST}: "
                               "not a manifest", ErrorCode.DownloadManifestParseError)  # fmt: skip
        self._manifest_size = manifest_size
        self._pending.clear()

    def _manifest(self) -> None:
        try:
            manifest = um.parse_message(um.DeltaArchiveManifest, bytes(self._pending), "the manifest")
        except ValueError as exc:
            raise self._refuse(str(exc), ErrorCode.DownloadManifestParseError) from None
        self._pending.clear()
        self._layout = plan(manifest, self._manifest_size, self.reader)

    def _start_blob(self, blob: Blob) -> None:
        self._blob_hash = hashlib.sha256() if blob.sha256 is not None else None
        self._bunzip = bz2.BZ2Decompressor() if blob.bzip2 and self.reader is Reader.DOWNLOAD_SYSEXT else None
        self._written = 0

    def _blob_data(self, blob: Blob, data: memoryview) -> None:
        if self._blob_hash is not None:
            self._blob_hash.update(data)
        if self.reader is not Reader.DOWNLOAD_SYSEXT:
            return
        if self._bunzip is None:
            self._written = self._image.write(blob, self._written, bytes(data))
            return
        if self._bunzip.eof:
            return  # ue-rs's BzDecoder stops at the end of the first stream
        try:
            out = self._bunzip.decompress(bytes(data), max_length=_CHUNK)
            self._written = self._image.write(blob, self._written, out)
            while not self._bunzip.eof and not self._bunzip.needs_input:
                out = self._bunzip.decompress(b"", max_length=_CHUNK)
                self._written = self._image.write(blob, self._written, out)
        except (OSError, EOFError) as exc:
            raise self._refuse(f"operation {blob.operation}: its bzip2 data is corrupt ({exc})",
                               ErrorCode.Error) from None  # fmt: skip

    def _end_blob(self, blob: Blob) -> None:
        if self._blob_hash is not None and not hmac.compare_digest(
            self._blob_hash.digest(), blob.sha256 or b""
        ):
            raise self._refuse(
                f"operation {blob.operation}: its {blob.end - blob.start} bytes of data (at offset {blob.start} "
                "after the manifest) do not match its data_sha256_hash", ErrorCode.DownloadOperationHashMismatch,
            )  # fmt: skip
        if self._bunzip is not None and not self._bunzip.eof:
            raise self._refuse(f"operation {blob.operation}: its bzip2 data ends before the end of its stream",
                               ErrorCode.Error)  # fmt: skip
        self._blob_hash = self._bunzip = None

    def _data(self, piece: memoryview) -> None:
        """Data section bytes ``[self._data_done, + len(piece))``: hand each blob its part."""
        assert self._layout is not None
        blobs, base = self._layout.blobs, self._data_done
        position, end = base, base + len(piece)
        while self._next_blob < len(blobs):
            blob = blobs[self._next_blob]
            if blob.start > end or (blob.start == end and blob.end > end):
                break  # its data is further on (download_sysext allows gaps between blobs)
            position = max(position, blob.start)
            if not self._in_blob:
                self._start_blob(blob)
                self._in_blob = True
            stop = min(end, blob.end)
            if stop > position:
                self._blob_data(blob, piece[position - base : stop - base])
                position = stop
            if position < blob.end:
                break
            self._end_blob(blob)
            self._in_blob = False
            self._next_blob += 1
        self._data_done = end

    def _end_data(self) -> None:
        self._data(memoryview(b""))  # blobs of no data at the very end
        assert self._layout is not None
        if self.reader is Reader.DOWNLOAD_SYSEXT and not hmac.compare_digest(
            self._image.digest(), self._layout.image_sha256
        ):
            raise self._refuse("the image the operations write does not match new_partition_info.hash",
                               ErrorCode.Error)  # fmt: skip

    # --- feeding ------------------------------------------------------------------------------

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """The next bytes of the file; raises PayloadRefused as soon as they show a problem."""
        view = memoryview(chunk).cast("B")
        while view:
            taken = self._take(view)
            self._file_hash.update(view[:taken])
            self._received += taken
            view = view[taken:]
            self._advance()

    def _take(self, view: memoryview) -> int:
        """Consume the part of ``view`` that belongs to the current section; returns its length."""
        section, layout = self._section, self._layout
        if section is _Section.DATA:
            assert layout is not None
            taken = min(len(view), layout.signatures_offset - self._data_done)
            self._data(view[:taken])
            return taken
        if section is _Section.END:
            assert layout is not None
            raise self._refuse(f"the file goes on past the end of its signatures blob at byte "
                               f"{layout.total_size}", ErrorCode.PayloadSizeMismatchError)  # fmt: skip
        taken = min(len(view), self._wanted() - len(self._pending))
        self._pending += view[:taken]
        return taken

    def _wanted(self) -> int:
        """How many bytes the section being collected in ``_pending`` has."""
        if self._section is _Section.HEADER:
            return HEADER_SIZE
        if self._section is _Section.MANIFEST:
            return self._manifest_size
        assert self._layout is not None
        return self._layout.signatures_size

    def _advance(self) -> None:
        """Move on while the current section is complete (a section may be empty)."""
        while True:
            section = self._section
            if section is _Section.DATA:
                assert self._layout is not None
                if self._data_done < self._layout.signatures_offset:
                    return
                self._end_data()
                self._signed_hash = self._file_hash.copy().digest()
                self._section = _Section.SIGNATURES
                continue
            if section is _Section.HEADER:
                self._magic()
            if section is _Section.END or len(self._pending) < self._wanted():
                return
            if section is _Section.HEADER:
                self._header()
                self._section = _Section.MANIFEST
            elif section is _Section.MANIFEST:
                self._manifest()
                self._section = _Section.DATA
            else:
                self._section = _Section.END  # the signatures blob stays in _pending for finish()

    # --- the end ------------------------------------------------------------------------------

    def finish(self) -> CheckedPayload:
        """After the last byte: the size and the signatures blob. Raises PayloadRefused."""
        layout = self._layout
        if layout is None or self._section is not _Section.END:
            expected = (
                f"its manifest says {layout.total_size}" if layout else "shorter than its header and manifest"
            )
            raise self._refuse(f"the file is truncated: {self._received} bytes, {expected}",
                               ErrorCode.PayloadSizeMismatchError)  # fmt: skip
        try:
            blob = um.parse_message(um.Signatures, bytes(self._pending), "the signatures blob")
        except ValueError as exc:
            raise self._refuse(str(exc), ErrorCode.DownloadPayloadPubKeyVerificationError) from None
        verified = self._check_signatures(list(blob.signatures))
        return CheckedPayload(self.reader, self._received, self._file_hash.digest(), len(layout.blobs),
                              len(blob.signatures), verified)  # fmt: skip

    def _check_signatures(self, signatures: list[Any]) -> bool:
        code = ErrorCode.DownloadPayloadPubKeyVerificationError
        if self.reader is Reader.UPDATE_ENGINE:
            chosen = [s for s in signatures if s.HasField("version") and s.version == SIGNATURE_VERSION][:1]
            if not chosen or not chosen[0].data:
                versions = [s.version if s.HasField("version") else None for s in signatures]
                raise self._refuse(f"the signatures blob has no version {SIGNATURE_VERSION} signature with data "
                                   f"(versions: {versions}); update_engine reads only that one", code)  # fmt: skip
        else:
            chosen = [s for s in signatures if s.HasField("data")]
            if not chosen:
                raise self._refuse("the signatures blob holds no signature", code)
        if self.public_key is None:
            return False
        if not any(self._verifies(bytes(s.data)) for s in chosen):
            raise self._refuse(
                f"the signature does not verify with the payload key ({self.public_key.key_size}-bit RSA): "
                "signed by another key, or altered after signing", code,
            )  # fmt: skip
        return True

    def _verifies(self, signature: bytes) -> bool:
        assert self.public_key is not None
        if len(signature) != self.public_key.key_size // 8:
            return False
        try:
            self.public_key.verify(
                signature, self._signed_hash, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
            )
        except InvalidSignature:
            return False
        return True


def check_file(
    path: str | os.PathLike[str], reader: Reader, public_key: rsa.RSAPublicKey | None = None
) -> CheckedPayload:
    """``PayloadChecker`` over a file on disk, read in 1 MiB pieces."""
    checker = PayloadChecker(reader, public_key)
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            checker.feed(block)
    return checker.finish()
