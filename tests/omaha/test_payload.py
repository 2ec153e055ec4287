"""Signed payloads: sign/verify, each tamper case with update_engine's errorcode, key file permissions."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from coreroll.omaha.codes import ErrorCode
from coreroll.omaha.payload import (
    PAYLOAD_VERSION,
    KeyFileError,
    PayloadError,
    build_payload,
    file_hashes,
    generate_private_key,
    load_private_key,
    load_public_key,
    payload_hashes,
    sniff_payload,
    verify_payload,
    write_keypair,
)

IMAGE = bytes(range(256)) * 64  # 16 KiB with every byte value


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return generate_private_key()


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return generate_private_key()


@pytest.fixture(scope="module")
def payload(key: rsa.RSAPrivateKey) -> bytes:
    return build_payload(IMAGE, "3975.2.2", key)


def _code(data: bytes, key: rsa.RSAPrivateKey, **expected: object) -> int:
    with pytest.raises(PayloadError) as err:
        verify_payload(data, key.public_key(), **expected)  # type: ignore[arg-type]
    assert str(int(err.value.code)) in str(err.value)
    return err.value.code


def test_signed_payload_verifies_and_yields_the_image(key: rsa.RSAPrivateKey, payload: bytes) -> None:
    size, sha256, _ = payload_hashes(payload)
    contents = verify_payload(payload, key.public_key(), expected_size=size, expected_sha256_b64=sha256)
    assert contents.version == "3975.2.2"
    assert contents.image == IMAGE
    assert contents.image_sha256_b64 == base64.b64encode(hashlib.sha256(IMAGE).digest()).decode()
    assert payload[:4] == b"CrAU" and struct.unpack(">Q", payload[4:12])[0] == PAYLOAD_VERSION
    assert len(payload) == 20 + struct.unpack(">Q", payload[12:20])[0] + len(IMAGE) + 256


def test_flipped_image_byte_is_caught(key: rsa.RSAPrivateKey, payload: bytes) -> None:
    size, sha256, _ = payload_hashes(payload)
    flipped = bytearray(payload)
    flipped[-300] ^= 0x01  # inside the image
    flipped = bytes(flipped)
    # With Omaha's hash (as a node has it), the hash check fires first: 10.
    assert (
        _code(flipped, key, expected_size=size, expected_sha256_b64=sha256) == ErrorCode.PayloadHashMismatch
    )
    # Without it the signature still catches the change: it opens, but over other bytes: 12.
    assert _code(flipped, key) == ErrorCode.DownloadPayloadVerificationError


def test_size_mismatch_is_11(key: rsa.RSAPrivateKey, payload: bytes) -> None:
    assert _code(payload + b"\0", key, expected_size=len(payload)) == ErrorCode.PayloadSizeMismatch
    assert _code(payload, key, expected_size=len(payload) - 1) == 11


def test_wrong_or_missing_signature_is_12(key: rsa.RSAPrivateKey, payload: bytes) -> None:
    other = build_payload(IMAGE[::-1], "3975.2.2", key)
    swapped = payload[:-256] + other[-256:]  # a real signature by the right key, over other bytes
    assert _code(swapped, key) == ErrorCode.DownloadPayloadVerificationError
    assert _code(payload[:-256], key) == 12  # stripped
    assert _code(payload[:-10], key) == 12  # truncated


def test_signature_by_another_key_is_18(key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey) -> None:
    foreign = build_payload(IMAGE, "3975.2.2", other_key)
    assert _code(foreign, key) == ErrorCode.DownloadPayloadPubKeyVerificationError
    corrupted = bytearray(build_payload(IMAGE, "3975.2.2", key))
    corrupted[-1] ^= 0xFF  # altered signature bytes no longer open either
    assert _code(bytes(corrupted), key) == 18


def test_structural_damage_is_21_or_23(key: rsa.RSAPrivateKey, payload: bytes) -> None:
    assert _code(b"GZIP" + payload[4:], key) == ErrorCode.DownloadInvalidMetadataMagicString
    assert _code(payload[:4] + struct.pack(">Q", 2) + payload[12:], key) == 21  # an update_engine payload
    assert (
        _code(payload[:12] + struct.pack(">Q", 1 << 40) + payload[20:], key)
        == ErrorCode.DownloadManifestParseError
    )
    manifest_len = struct.unpack(">Q", payload[12:20])[0]
    garbled = payload[:20] + b"{" * manifest_len + payload[20 + manifest_len :]
    assert _code(garbled, key) == 23
    assert _code(b"CrA", key) == 21


def test_opaque_payload_hashes_match_a_streamed_file(tmp_path: Path) -> None:
    blob = os.urandom(3 * 1024 * 1024 + 17)  # e.g. a real flatcar_production_update.gz: just bytes
    path = tmp_path / "flatcar_production_update.gz"
    path.write_bytes(blob)
    expected = (
        len(blob),
        base64.b64encode(hashlib.sha256(blob).digest()).decode(),
        base64.b64encode(hashlib.sha1(blob).digest()).decode(),
    )
    assert payload_hashes(blob) == expected
    assert file_hashes(path, chunk_size=64 * 1024) == expected
    assert sniff_payload(blob[:16]) == "opaque"


def test_sniff_tells_our_container_from_update_engine_payloads(payload: bytes) -> None:
    assert sniff_payload(payload[:20]) == "coreroll"
    assert sniff_payload(b"CrAU" + struct.pack(">QQ", 2, 100)) == "update_engine"


def test_keypair_files_and_permissions(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    old_umask = os.umask(0)  # the most permissive umask must still give 0600
    try:
        private_path, public_path = write_keypair(tmp_path / "keys", key)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(public_path.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == [private_path.name, public_path.name]
    loaded = load_private_key(private_path)
    signed = build_payload(b"image", "1.0.0", loaded)
    assert verify_payload(signed, load_public_key(public_path)).image == b"image"
    # Never overwrite an existing key.
    with pytest.raises(KeyFileError, match="already exists"):
        write_keypair(tmp_path / "keys")
    assert load_private_key(private_path).private_numbers() == key.private_numbers()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_group_or_world_readable_private_key_is_refused(
    tmp_path: Path, key: rsa.RSAPrivateKey, mode: int
) -> None:
    private_path, _ = write_keypair(tmp_path, key)
    private_path.chmod(mode)
    with pytest.raises(KeyFileError, match=f"mode {mode:04o}.*chmod 600"):
        load_private_key(private_path)


def test_bad_key_files_get_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"not a key")
    junk.chmod(0o600)
    with pytest.raises(KeyFileError, match="not an unencrypted PEM private key"):
        load_private_key(junk)
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        load_public_key(junk)
