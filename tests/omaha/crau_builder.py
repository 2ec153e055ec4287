"""Real CrAU payloads for tests, laid out as Flatcar's delta_generator writes a full update.

``build_crau(image, ...)`` cuts ``image`` into chunks, one REPLACE_BZ operation each (REPLACE where
bzip2 does not make it smaller), with ``dst_extents``, ``data_sha256_hash``, ``new_partition_info``
(size, SHA-256), the signature's noop operation and ``signatures_offset``/``signatures_size``, then
signs the SHA-256 of everything before the signatures blob with each key (RSA PKCS#1 v1.5, SHA-256
DigestInfo, as ``openssl pkeyutl -sign -pkeyopt digest:sha256`` does in ``payload_signer.cc``) into a
``Signatures`` blob whose versions end at 2. Keyword arguments make the broken variants the tests need.
``fleet_key()`` (the key the nodes trust) and ``foreign_key()`` are cached RSA-2048 keys; ``public_pem(key)`` is an
``update-payload-key.pub.pem``; ``image_bytes(tag, size)`` a deterministic image.
"""

from __future__ import annotations

import bz2
import functools
import hashlib
import struct
from collections.abc import Callable, Sequence
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from coreroll.omaha import update_metadata as um

BLOCK = 4096
SPARSE_HOLE = 2**64 - 1  # delta_generator's kSparseHole


@functools.cache
def fleet_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def foreign_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def image_bytes(tag: str, size: int) -> bytes:
    """``size`` bytes: a readable head naming ``tag``, then a pattern that compresses somewhat."""
    seed = hashlib.sha256(tag.encode()).digest()
    body = b"".join(
        hashlib.sha256(seed + i.to_bytes(4, "big")).digest()[:8] + b"\0" * 24 for i in range(size // 32 + 1)
    )
    return (f"image {tag}\n".encode() + body)[:size]


def sign_digest(digest: bytes, key: rsa.RSAPrivateKey) -> bytes:
    return key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))


def signatures_blob(signatures: Sequence[bytes], versions: Sequence[int] | None = None) -> bytes:
    """update_engine's ``ConvertSignatureToProtobufBlob``: versions ``3 - n`` .. 2."""
    blob = um.Signatures()
    for i, data in enumerate(signatures):
        blob.signatures.add(version=versions[i] if versions else 3 - len(signatures) + i, data=data)
    return bytes(blob.SerializeToString())


def header(manifest: bytes, version: int = 1) -> bytes:
    return b"CrAU" + struct.pack(">QQ", version, len(manifest))


def build_crau(
    image: bytes,
    *,
    signers: Sequence[rsa.RSAPrivateKey] | None = None,
    versions: Sequence[int] | None = None,
    chunk: int = 4 * BLOCK,
    compress: bool = True,
    signed: bool = True,
    edit_manifest: Callable[[Any], None] | None = None,
    edit_data: Callable[[bytes], bytes] | None = None,
    sign: Callable[[bytes, rsa.RSAPrivateKey], bytes] = sign_digest,
    fixed_signatures: bytes | None = None,
) -> bytes:
    """A full payload for ``image``; ``edit_data`` changes the operations'
    data (after their hashes, before the signatures' offset), ``edit_manifest`` the manifest before signing;
    ``fixed_signatures`` is a signatures blob to use as is."""
    signers = [fleet_key()] if signers is None else signers
    manifest = um.DeltaArchiveManifest()
    data = bytearray()
    for start in range(0, len(image), chunk):
        piece = image[start : start + chunk]
        packed = bz2.compress(piece) if compress else piece
        kind = um.REPLACE_BZ if compress and len(packed) < len(piece) else um.REPLACE
        blob = packed if kind == um.REPLACE_BZ else piece
        op = manifest.partition_operations.add(type=kind, data_offset=len(data), data_length=len(blob),
                                               data_sha256_hash=hashlib.sha256(blob).digest())  # fmt: skip
        op.dst_extents.add(start_block=start // BLOCK, num_blocks=(len(piece) + BLOCK - 1) // BLOCK)
        data += blob
    if edit_data is not None:
        data = bytearray(edit_data(bytes(data)))
    manifest.new_partition_info.size = len(image)
    manifest.new_partition_info.hash = hashlib.sha256(image).digest()
    if signed:
        key_bytes = [k.key_size // 8 for k in signers]
        blob_size = len(fixed_signatures if fixed_signatures is not None
                        else signatures_blob([b"\0" * n for n in key_bytes], versions))  # fmt: skip
        manifest.signatures_offset = len(data)
        manifest.signatures_size = blob_size
        noop = manifest.noop_operations.add(type=um.REPLACE, data_offset=len(data), data_length=blob_size)
        noop.dst_extents.add(start_block=SPARSE_HOLE, num_blocks=(blob_size + BLOCK - 1) // BLOCK)
    if edit_manifest is not None:
        edit_manifest(manifest)
    raw = manifest.SerializePartialToString()
    body = header(raw) + raw + bytes(data)
    if not signed:
        return body
    if fixed_signatures is not None:
        return body + fixed_signatures
    digest = hashlib.sha256(body).digest()
    return body + signatures_blob([sign(digest, key) for key in signers], versions)
