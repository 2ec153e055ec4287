"""Where everything of a CrAU payload lies, read from its manifest by the rules of the program that applies it.

A payload (``update_metadata.proto``) is ``b"CrAU"`` | u64 version (1) | u64 manifest size | the
``DeltaArchiveManifest`` | the operations' data blobs | the ``Signatures`` blob; all offsets in the
manifest count from the end of the manifest. Two programs read one on a Flatcar node:

- ``Reader.UPDATE_ENGINE``: update_engine applies the payload (``payload_processor.cc``): the data of
  ``partition_operations`` then of every procedure's ``operations`` follow each other with no gap in
  that order (an operation whose ``data_offset`` is elsewhere, or signatures not right after the
  last blob: 28); an operation with data must carry ``data_sha256_hash`` (38) matching its blob (29)
  (operations of a procedure without a known type are skipped unchecked); a typed procedure needs
  ``new_info`` (23); ``new_partition_info`` must be there (12) with the SHA-256 the written
  partition is compared with (15); without ``signatures_offset``/``signatures_size`` the payload is
  unsigned (17).
- ``Reader.DOWNLOAD_SYSEXT``: flatcar-postinst's ``download_sysext`` (ue-rs
  ``update-format-crau/src/delta_update/mod.rs``) reads an OEM or extension image: version 1 only;
  signatures offset and size both required; each ``partition_operations`` entry needs
  ``data_offset``, ``data_length`` and exactly one destination extent with ``start_block``; its data
  (bunzip2'd for REPLACE_BZ, as is otherwise) is written at ``start_block * block_size``, and the
  image so written must hash to ``new_partition_info.hash``. coreroll checks this image while the
  bytes stream past, so it asks more than ue-rs of one thing: the blobs must lie in the file in
  operation order and write the image front to back (delta_generator lays them out so).

Both: the file ends right after the signatures blob (``20 + manifest size + signatures_offset +
signatures_size`` bytes; a node downloading a longer or shorter file fails with 11).

Public API: ``Reader``; ``PayloadRefused(reader, problem, code)`` (``code``: the update_engine
``ErrorCode`` the node would report, None for coreroll's own limits); ``Blob``; ``Layout`` (with
``total_size``); ``plan(manifest, manifest_size, reader) -> Layout``; ``HEADER_SIZE``,
``MAX_MANIFEST``, ``MAX_SIGNATURES``, ``MAX_IMAGE``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final

from coreroll.omaha import update_metadata as um
from coreroll.omaha.codes import ErrorCode

HEADER_SIZE: Final = 20  # magic, u64 version, u64 manifest size
MAX_MANIFEST: Final = 16 * 1024**2  # a Flatcar manifest is tens of KiB (an operation per MiB of image)
MAX_SIGNATURES: Final = 64 * 1024  # a signature is 256 bytes per RSA-2048 key
MAX_IMAGE: Final = 16 * 1024**3  # an extension image, as download_sysext writes it
SHA256_SIZE: Final = 32


class Reader(enum.StrEnum):
    UPDATE_ENGINE = "update_engine"
    DOWNLOAD_SYSEXT = "download_sysext"


class PayloadRefused(Exception):
    """A payload the reader would refuse; ``problem`` says what is wrong and where."""

    def __init__(self, reader: Reader, problem: str, code: ErrorCode | None = None) -> None:
        super().__init__(problem)
        self.reader = reader
        self.problem = problem
        # download_sysext failing makes flatcar-postinst fail, whatever the cause
        self.code = ErrorCode.PostinstallRunnerError if code and reader is Reader.DOWNLOAD_SYSEXT else code

    def __str__(self) -> str:
        if self.code is None:
            return self.problem
        if self.reader is Reader.DOWNLOAD_SYSEXT:
            return f"{self.problem} (download_sysext in flatcar-postinst would refuse this file)"
        return f"{self.problem} (update_engine would fail with errorcode {int(self.code)} {self.code.name})"


@dataclass(frozen=True, slots=True)
class Blob:
    """One operation's data: ``[start, end)`` counted from the end of the manifest."""

    operation: int  # its number, in the reader's order
    start: int
    end: int
    sha256: bytes | None = None  # update_engine: the data_sha256_hash to check
    bzip2: bool = False  # download_sysext: bunzip2 before writing
    image_offset: int = 0  # download_sysext: where in the image its output goes


@dataclass(frozen=True, slots=True)
class Layout:
    reader: Reader
    manifest_size: int
    blobs: tuple[Blob, ...]
    signatures_offset: int
    signatures_size: int
    image_size: int  # new_partition_info.size
    image_sha256: bytes  # new_partition_info.hash

    @property
    def total_size(self) -> int:
        return HEADER_SIZE + self.manifest_size + self.signatures_offset + self.signatures_size


def _update_engine_operations(manifest: Any, refuse: Any) -> list[tuple[Any, bool]]:
    """(operation, checked) in update_engine's order; ``checked``: a performer runs it (hash checked)."""
    operations = [(op, True) for op in manifest.partition_operations]
    for number, procedure in enumerate(manifest.procedures):
        typed = procedure.HasField("type")  # only a known enum value counts as set, as in C++
        if typed and not procedure.HasField("new_info"):
            raise refuse(
                f"procedure {number} has a type but no new_info", ErrorCode.DownloadManifestParseError
            )
        operations += [(op, typed) for op in procedure.operations]
    return operations


def _update_engine_blobs(manifest: Any, refuse: Any) -> tuple[Blob, ...]:
    blobs, position = [], 0
    for number, (op, checked) in enumerate(_update_engine_operations(manifest, refuse)):
        length = op.data_length
        if length and op.data_offset != position:
            raise refuse(
                f"operation {number}'s data is at offset {op.data_offset}, not at {position} right after "
                "the previous operation's", ErrorCode.DownloadOperationExecutionError,
            )  # fmt: skip
        digest = op.data_sha256_hash if op.HasField("data_sha256_hash") else b""
        if checked and length and not digest:
            raise refuse(f"operation {number} has data but no data_sha256_hash",
                         ErrorCode.DownloadOperationHashMissingError)  # fmt: skip
        blobs.append(Blob(number, position, position + length, digest if checked and digest else None))
        position += length
    return tuple(blobs)


def _sysext_blobs(manifest: Any, refuse: Any) -> tuple[Blob, ...]:
    blobs: list[Blob] = []
    data_end = 0
    for number, op in enumerate(manifest.partition_operations):
        missing = [f for f in ("data_offset", "data_length") if not op.HasField(f)]
        if missing:
            raise refuse(f"operation {number} has no {' and no '.join(missing)}", ErrorCode.Error)
        if len(op.dst_extents) != 1 or not op.dst_extents[0].HasField("start_block"):
            raise refuse(f"operation {number} has {len(op.dst_extents)} destination extents, not one with a "
                         "start_block", ErrorCode.Error)  # fmt: skip
        image_offset = op.dst_extents[0].start_block * manifest.block_size
        if image_offset > MAX_IMAGE:
            raise refuse(f"operation {number} writes the image at byte {image_offset}, past {MAX_IMAGE}")
        if op.data_offset < data_end:
            raise refuse(f"operation {number}'s data at offset {op.data_offset} lies before the end of the "
                         f"previous operation's ({data_end}); coreroll checks extension payloads whose "
                         "data follows operation order")  # fmt: skip
        bzip2 = op.type == um.REPLACE_BZ
        blobs.append(Blob(number, op.data_offset, op.data_offset + op.data_length, None, bzip2, image_offset))
        data_end = op.data_offset + op.data_length
    return tuple(blobs)


def plan(manifest: Any, manifest_size: int, reader: Reader) -> Layout:
    """The layout ``reader`` reads from ``manifest``; raises PayloadRefused naming the first problem."""

    def refuse(problem: str, code: ErrorCode | None = None) -> PayloadRefused:
        return PayloadRefused(reader, problem, code)

    if reader is Reader.UPDATE_ENGINE:
        blobs = _update_engine_blobs(manifest, refuse)
    else:
        blobs = _sysext_blobs(manifest, refuse)
    missing = [f for f in ("signatures_offset", "signatures_size") if not manifest.HasField(f)]
    if missing:
        raise refuse(f"the payload is not signed: its manifest has no {' and no '.join(missing)}",
                     ErrorCode.SignedDeltaPayloadExpectedError)  # fmt: skip
    offset, size = manifest.signatures_offset, manifest.signatures_size
    data_end = blobs[-1].end if blobs else 0
    if reader is Reader.UPDATE_ENGINE and offset != data_end:
        raise refuse(f"signatures_offset is {offset}, not {data_end} right after the last operation's data",
                     ErrorCode.DownloadOperationExecutionError)  # fmt: skip
    if offset < data_end:
        raise refuse(f"signatures_offset {offset} lies inside operation data (which ends at {data_end})",
                     ErrorCode.Error)  # fmt: skip
    if size == 0:
        raise refuse("signatures_size is 0: the payload carries no signature",
                     ErrorCode.SignedDeltaPayloadExpectedError)  # fmt: skip
    if size > MAX_SIGNATURES:
        raise refuse(f"signatures_size is {size}, over {MAX_SIGNATURES} bytes")
    if not manifest.HasField("new_partition_info"):
        raise refuse("the manifest has no new_partition_info", ErrorCode.DownloadPayloadVerificationError)
    info = manifest.new_partition_info
    if len(info.hash) != SHA256_SIZE or (reader is Reader.UPDATE_ENGINE and info.size == 0):
        raise refuse(f"new_partition_info has a {len(info.hash)}-byte hash and size {info.size}: expected "
                     "the image's SHA-256 and its size", ErrorCode.NewRootfsVerificationError)  # fmt: skip
    return Layout(reader, manifest_size, blobs, offset, size, info.size, bytes(info.hash))
