"""The whole-payload check (issue 15 section 4) on real CrAU payloads built by tests/omaha/crau_builder.py:
what update_engine and download_sysext would refuse is refused, naming what is wrong and the code a
node would report; what they accept is accepted, fed in any pieces."""

from __future__ import annotations

import bz2
import hashlib
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from coreroll.omaha import update_metadata as um
from coreroll.omaha.codes import ErrorCode
from coreroll.omaha.crau import PayloadChecker, check_file
from coreroll.omaha.crau_layout import PayloadRefused, Reader
from tests.omaha.crau_builder import (
    BLOCK,
    build_crau,
    fleet_key,
    foreign_key,
    header,
    image_bytes,
    sign_digest,
    signatures_blob,
)

UE, SYSEXT = Reader.UPDATE_ENGINE, Reader.DOWNLOAD_SYSEXT
IMAGE = image_bytes("usr", 70_000)


def check(data: bytes, reader: Reader = UE, key: Any = None, pieces: int | None = None) -> Any:
    """Feed ``data`` whole (or cut at ``pieces`` random places) and finish."""
    checker = PayloadChecker(reader, key)
    cuts = sorted(random.Random(pieces).sample(range(1, len(data)), pieces)) if pieces else []
    for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
        checker.feed(data[start:end])
    return checker.finish()


def refused(data: bytes, reader: Reader = UE, key: Any = None) -> PayloadRefused:
    with pytest.raises(PayloadRefused) as caught:
        check(data, reader, key)
    return caught.value


@pytest.mark.parametrize("reader", [UE, SYSEXT])
def test_a_good_payload_is_accepted_in_any_pieces(reader: Reader) -> None:
    payload = build_crau(IMAGE)
    for pieces in (None, 1, 7, 300):
        checked = check(payload, reader, fleet_key().public_key(), pieces)
        assert checked.size == len(payload) and checked.sha256 == hashlib.sha256(payload).digest()
        assert checked.signature_verified and checked.operations == 5 and checked.signatures == 1
    assert check(payload, reader).signature_verified is False  # no key: presence only


def test_garbage_after_the_header_is_refused_at_the_manifest_as_update_engine_does() -> None:
    checker = PayloadChecker(UE)
    with pytest.raises(PayloadRefused) as caught:
        checker.feed(b"CrAU" + (1).to_bytes(8, "big") + b"\x1f\x8b" + b"garbage " * 100)
    assert caught.value.code == ErrorCode.DownloadManifestParseError and "manifest" in str(caught.value)
    short_garbage = header(b"\xff" * 40) + b"\xff" * 40 + b"rest of the file" * 10
    assert refused(short_garbage).code == ErrorCode.DownloadManifestParseError
    assert refused(b"\x1f\x8b\x08\x00 a gzip file" * 4).code == ErrorCode.DownloadInvalidMetadataMagicString


def test_a_truncated_payload_is_refused_with_the_size_a_node_would_see() -> None:
    payload = build_crau(IMAGE)
    for cut in (10, 300, len(payload) // 2, len(payload) - 1):
        problem = refused(payload[:cut])
        assert problem.code == ErrorCode.PayloadSizeMismatchError, cut
        assert "truncated" in problem.problem and str(cut) in problem.problem
    tail = refused(payload + b"\0")
    assert tail.code == ErrorCode.PayloadSizeMismatchError and f"byte {len(payload)}" in tail.problem


def test_a_payload_signed_by_another_key_or_altered_is_refused_with_18() -> None:
    key = fleet_key().public_key()
    foreign = refused(build_crau(IMAGE, signers=[foreign_key()]), key=key)
    assert (
        foreign.code == ErrorCode.DownloadPayloadPubKeyVerificationError and "another key" in foreign.problem
    )
    # A data byte changed after signing (its operation hash recomputed, so only the signature tells).
    payload = bytearray(build_crau(IMAGE))
    assert (
        refused(bytes(payload[:-5]) + b"xxxxx", key=key).code
        == ErrorCode.DownloadPayloadPubKeyVerificationError
    )


def test_signatures_update_engine_cannot_use_are_refused() -> None:
    key = fleet_key().public_key()
    unsigned = refused(build_crau(IMAGE, signed=False))
    assert unsigned.code == ErrorCode.SignedDeltaPayloadExpectedError and "not signed" in unsigned.problem
    version1 = refused(build_crau(IMAGE, versions=[1]))
    assert (
        version1.code == ErrorCode.DownloadPayloadPubKeyVerificationError and "version 2" in version1.problem
    )
    # A production-style blob: version 1 by an old key, version 2 by the fleet's key. update_engine
    # reads only the version 2 one; download_sysext takes whichever verifies.
    both = build_crau(IMAGE, signers=[foreign_key(), fleet_key()])
    assert check(both, UE, key).signature_verified and check(both, SYSEXT, key).signature_verified
    swapped = build_crau(IMAGE, signers=[fleet_key(), foreign_key()])
    assert refused(swapped, UE, key).code == ErrorCode.DownloadPayloadPubKeyVerificationError
    assert check(swapped, SYSEXT, key).signature_verified
    empty = build_crau(IMAGE, fixed_signatures=signatures_blob([b""], [2]))
    assert refused(empty).code == ErrorCode.DownloadPayloadPubKeyVerificationError


def _edit(change: Any) -> bytes:
    return build_crau(IMAGE, edit_manifest=change)


def test_manifest_problems_name_the_operation_and_the_code() -> None:
    def no_type(m: Any) -> None:
        m.partition_operations[2].ClearField("type")

    def moved(m: Any) -> None:
        m.partition_operations[3].data_offset += 1

    def no_hash(m: Any) -> None:
        m.partition_operations[1].ClearField("data_sha256_hash")

    def no_partition_info(m: Any) -> None:
        m.ClearField("new_partition_info")

    def signatures_elsewhere(m: Any) -> None:
        m.signatures_offset -= 1

    cases = [
        (no_type, ErrorCode.DownloadManifestParseError, "partition_operations[2].type"),
        (moved, ErrorCode.DownloadOperationExecutionError, "operation 3's data"),
        (no_hash, ErrorCode.DownloadOperationHashMissingError, "operation 1"),
        (no_partition_info, ErrorCode.DownloadPayloadVerificationError, "new_partition_info"),
        (signatures_elsewhere, ErrorCode.DownloadOperationExecutionError, "signatures_offset"),
    ]
    for change, code, where in cases:
        problem = refused(_edit(change))
        assert (problem.code, where in problem.problem) == (code, True), problem


def test_an_operation_whose_data_does_not_match_its_hash_is_refused_while_streaming() -> None:
    def flip(data: bytes) -> bytes:
        return data[:100] + bytes([data[100] ^ 1]) + data[101:]

    payload = build_crau(IMAGE, edit_data=flip)
    checker = PayloadChecker(UE)
    with pytest.raises(PayloadRefused) as caught:
        checker.feed(payload[: len(payload) - 400])  # before the signatures: no need to wait for the end
    assert (
        caught.value.code == ErrorCode.DownloadOperationHashMismatch and "operation 0" in caught.value.problem
    )


def test_extension_payloads_are_read_as_download_sysext_reads_them() -> None:
    assert check(build_crau(IMAGE, compress=False), SYSEXT).operations == 5
    wrong_image = refused(_edit(lambda m: setattr(m.new_partition_info, "hash", b"\1" * 32)), SYSEXT)
    assert "new_partition_info.hash" in wrong_image.problem and "download_sysext" in str(wrong_image)
    assert wrong_image.code == ErrorCode.PostinstallRunnerError

    def corrupt_bzip2(data: bytes) -> bytes:
        return data[:20] + b"\0" * 20 + data[40:]

    # Not a CrAU version 1 file: ue-rs reads no other.
    assert "version 2" in refused(header(b"", 2) + b"x" * 100, SYSEXT).problem
    assert "bzip2" in refused(build_crau(IMAGE, edit_data=corrupt_bzip2), SYSEXT).problem

    def two_extents(m: Any) -> None:
        m.partition_operations[1].dst_extents.add(start_block=99, num_blocks=1)

    assert "destination extents" in refused(_edit(two_extents), SYSEXT).problem

    def no_data_offset(m: Any) -> None:
        m.partition_operations[0].ClearField("data_offset")

    assert "no data_offset" in refused(_edit(no_data_offset), SYSEXT).problem


def test_an_extension_image_with_a_hole_is_hashed_with_zeros_in_it() -> None:
    """download_sysext writes each operation at start_block * block_size of a new file: a skipped block reads 0."""
    first, last = b"A" * BLOCK, b"B" * 100
    image = first + b"\0" * (2 * BLOCK) + last

    def hole(m: Any) -> None:
        del m.partition_operations[:]
        for number, (piece, block) in enumerate(((first, 0), (last, 3))):
            packed = bz2.compress(piece)
            offset = 0 if number == 0 else len(bz2.compress(first))
            op = m.partition_operations.add(type=um.REPLACE_BZ, data_offset=offset, data_length=len(packed))
            op.dst_extents.add(start_block=block, num_blocks=1)

    payload = build_crau(
        image, edit_manifest=hole, edit_data=lambda _: bz2.compress(first) + bz2.compress(last)
    )
    assert check(payload, SYSEXT, fleet_key().public_key()).operations == 2

    def backwards(m: Any) -> None:
        hole(m)
        m.partition_operations[1].dst_extents[0].start_block = 0

    problem = refused(build_crau(image, edit_manifest=backwards,
                                 edit_data=lambda _: bz2.compress(first) + bz2.compress(last)), SYSEXT)  # fmt: skip
    assert "front to back" in problem.problem


def test_the_schema_matches_update_metadata_proto_field_numbers() -> None:
    """A manifest written byte by byte from the .proto's field numbers, not with our classes."""

    def varint(n: int) -> bytes:
        out = b""
        while True:
            out += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
            n >>= 7
            if not n:
                return out

    def field(number: int, value: int | bytes) -> bytes:
        if isinstance(value, int):
            return varint(number << 3) + varint(value)
        return varint(number << 3 | 2) + varint(len(value)) + value

    extent = field(1, 7) + field(2, 1)  # Extent.start_block, num_blocks
    operation = field(1, 1) + field(2, 0) + field(3, 5) + field(6, extent) + field(8, b"h" * 32)
    info = field(1, 4096) + field(2, b"s" * 32)  # InstallInfo.size, hash
    raw = field(1, operation) + field(3, 512) + field(4, 5) + field(5, 300) + field(9, info)
    manifest = um.parse_message(um.DeltaArchiveManifest, raw, "manifest")
    op = manifest.partition_operations[0]
    assert (op.type, op.data_offset, op.data_length, op.data_sha256_hash) == (um.REPLACE_BZ, 0, 5, b"h" * 32)
    assert (op.dst_extents[0].start_block, op.dst_extents[0].num_blocks) == (7, 1)
    assert (manifest.block_size, manifest.signatures_offset, manifest.signatures_size) == (512, 5, 300)
    assert (manifest.new_partition_info.size, manifest.new_partition_info.hash) == (4096, b"s" * 32)
    assert um.DeltaArchiveManifest().block_size == 4096  # the .proto's default
    signature = um.parse_message(um.Signatures, field(1, field(1, 2) + field(2, b"sig")), "signatures")
    assert (signature.signatures[0].version, signature.signatures[0].data) == (2, b"sig")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_a_signature_made_as_payload_signer_makes_it_verifies(tmp_path: Path) -> None:
    """payload_signer.cc signs with `openssl pkeyutl -sign -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pkcs1`."""
    from cryptography.hazmat.primitives import serialization

    key_path = tmp_path / "key.pem"
    key_path.write_bytes(fleet_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))  # fmt: skip

    def openssl_sign(digest: bytes, _key: Any) -> bytes:
        (tmp_path / "hash").write_bytes(digest)
        subprocess.run(["openssl", "pkeyutl", "-sign", "-pkeyopt", "digest:sha256", "-pkeyopt",
                        "rsa_padding_mode:pkcs1", "-inkey", str(key_path), "-in", str(tmp_path / "hash"),
                        "-out", str(tmp_path / "sig")], check=True)  # fmt: skip
        return (tmp_path / "sig").read_bytes()

    payload = build_crau(IMAGE, sign=openssl_sign)
    assert payload == build_crau(IMAGE, sign=sign_digest)  # PKCS#1 v1.5 is deterministic: the same bytes
    (tmp_path / "payload").write_bytes(payload)
    assert check_file(tmp_path / "payload", UE, fleet_key().public_key()).signature_verified
