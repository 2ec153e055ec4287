"""The signed payload container, its keys, and the hashes Omaha carries for any payload.

Container, all integers big-endian, header shaped like update_engine's::

    b"CrAU" | u64 version (= PAYLOAD_VERSION, 100) | u64 manifest length | manifest (UTF-8 JSON)
    | image bytes | signature

The manifest is ``{"image_sha256": <base64 SHA-256 of the image>, "image_size": N, "version": "<version>"}``
(sorted keys, no spaces). The signature is RSA PKCS#1 v1.5 over the SHA-256 of every byte before it, made
with an RSA-2048 key, as update_engine's payload signer does; its length is the key's size (256 bytes).
Version 100 (update_engine's own payloads are versions 1 and 2, with protobuf manifests) keeps a real
Flatcar payload from ever being read as ours: ``sniff_payload`` tells the three kinds apart.

Public API:

- ``generate_private_key()`` -> RSA-2048 key. ``write_keypair(directory, private_key=None)`` ->
  ``(private_path, public_path)`` (``update-payload-key.pem`` 0600, created 0600 from the first byte and
  linked into place, never overwriting an existing key; ``update-payload-key.pub.pem`` 0644).
- ``load_private_key(path)`` refuses a key file readable by group or others (``KeyFileError`` naming the
  mode and the chmod to run) and keys under 2048 bits; ``load_public_key(path)``.
- ``build_payload(image, version, private_key) -> bytes``.
- ``verify_payload(data, public_key, *, expected_size=None, expected_sha256_b64=None) -> PayloadContents``
  raises ``PayloadError(code, message)``; ``code`` is the update_engine ``ErrorCode`` a node reports:

  ==================================================  ===============================================
  check (in this order)                               code
  ==================================================  ===============================================
  size != Omaha ``size``                              11 PayloadSizeMismatchError
  base64 SHA-256 != Omaha ``sha256``                  10 PayloadHashMismatchError
  no ``CrAU`` magic / unknown version                 21 DownloadInvalidMetadataMagicString
  manifest length, JSON or fields invalid             23 DownloadManifestParseError
  signature missing, truncated or wrong length        12 DownloadPayloadVerificationError
  signature does not open with the key (another key   18 DownloadPayloadPubKeyVerificationError
  signed it, or the signature bytes were altered)
  signature opens but its digest differs (bytes       12 DownloadPayloadVerificationError
  altered after signing)
  image SHA-256 != the signed manifest               10 PayloadHashMismatchError
  ==================================================  ===============================================

  PKCS#1 v1.5 cannot tell "another key" from "corrupted signature bytes": both fail to open, so both are 18.
- ``payload_hashes(data) -> (size, sha256_b64, sha1_b64)`` for any payload (a real Flatcar
  ``flatcar_production_update.gz`` is opaque bytes to the server); ``file_hashes(path)`` streams a file
  on disk in 1 MiB chunks. ``sniff_payload(head) -> "coreroll" | "update_engine" | "opaque"``;
  ``header_version(head)``: the big-endian u64 after ``CrAU`` (None without the magic), which is
  ``UPDATE_ENGINE_PAYLOAD_VERSION`` (1) for a payload Flatcar's update_engine can apply.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from coreroll.omaha.codes import ErrorCode

MAGIC: Final = b"CrAU"
PAYLOAD_VERSION: Final = 100
UPDATE_ENGINE_PAYLOAD_VERSION: Final = 1  # delta_generator's major version, the one update_engine applies
KEY_BITS: Final = 2048
MAX_MANIFEST: Final = 65536
PRIVATE_KEY_NAME: Final = "update-payload-key.pem"
PUBLIC_KEY_NAME: Final = "update-payload-key.pub.pem"
_HEADER: Final = struct.Struct(">4sQQ")
_CHUNK: Final = 1024 * 1024


class PayloadError(Exception):
    """A payload that must not be installed; ``code`` is the update_engine ErrorCode to report."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} (errorcode {int(self.code)} {self.code.name})"


class KeyFileError(Exception):
    """A key file that cannot be used (permissions, format, size); the message says what to do."""


@dataclass(frozen=True, slots=True)
class PayloadContents:
    """A verified payload: the version it carries and the image to write."""

    version: str
    image: bytes
    image_sha256_b64: str


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def payload_hashes(data: bytes) -> tuple[int, str, str]:
    """(size, base64 SHA-256, base64 SHA-1) of a payload, as the Omaha response carries them."""
    return len(data), b64(hashlib.sha256(data).digest()), b64(hashlib.sha1(data).digest())


def file_hashes(path: str | os.PathLike[str], chunk_size: int = _CHUNK) -> tuple[int, str, str]:
    """``payload_hashes`` of a file on disk, read in chunks so memory stays flat for multi-GiB payloads."""
    sha256, sha1, size = hashlib.sha256(), hashlib.sha1(), 0
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            sha256.update(block)
            sha1.update(block)
            size += len(block)
    return size, b64(sha256.digest()), b64(sha1.digest())


def sniff_payload(head: bytes) -> Literal["coreroll", "update_engine", "opaque"]:
    """What the first 12+ bytes of a file say it is: our signed container, an update_engine payload, or other."""
    if head[:4] != MAGIC:
        return "opaque"
    if len(head) >= 12 and struct.unpack(">Q", head[4:12])[0] == PAYLOAD_VERSION:
        return "coreroll"
    return "update_engine"


def header_version(head: bytes) -> int | None:
    """The payload format version after the ``CrAU`` magic; None when ``head`` does not carry one."""
    if head[:4] != MAGIC or len(head) < 12:
        return None
    return int(struct.unpack(">Q", head[4:12])[0])


# --- keys -------------------------------------------------------------------------------------------


def generate_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def _public_pem(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _write_new_file(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode`` from the first byte; refuse to replace an existing file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # O_EXCL + mode: the file never exists with wider permissions (umask can only narrow them).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # in case the umask narrowed it below what we want (e.g. 0644 public key)
        with os.fdopen(fd, "wb", closefd=False) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic and, unlike rename, never replaces an existing key
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key") from None
    finally:
        tmp.unlink()


def write_keypair(
    directory: str | os.PathLike[str], private_key: rsa.RSAPrivateKey | None = None
) -> tuple[Path, Path]:
    """Write a (new, unless given) key pair into ``directory``; returns (private_path, public_path)."""
    folder = Path(directory)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = private_key or generate_private_key()
    private_path, public_path = folder / PRIVATE_KEY_NAME, folder / PUBLIC_KEY_NAME
    for existing in (private_path, public_path):
        if existing.exists():
            raise KeyFileError(f"{existing} already exists; refusing to overwrite a key")
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_new_file(private_path, pem, 0o600)
    _write_new_file(public_path, _public_pem(key.public_key()), 0o644)
    return private_path, public_path


def load_private_key(path: str | os.PathLike[str]) -> rsa.RSAPrivateKey:
    """Load an unencrypted PEM RSA key; refuses files readable or writable by group/others."""
    with open(path, "rb") as handle:
        mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)  # the file we read, not a swapped path
        if mode & 0o077:
            raise KeyFileError(
                f"private key {path} has mode {mode:04o}, readable by group or others; run: chmod 600 {path}"
            )
        pem = handle.read()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as err:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key: {err}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFileError(f"{path} is not an RSA key")
    if key.key_size < KEY_BITS:
        raise KeyFileError(f"{path} is a {key.key_size}-bit key; at least {KEY_BITS} bits are required")
    return key


def load_public_key(path: str | os.PathLike[str]) -> rsa.RSAPublicKey:
    """Load a PEM RSA public key (``update-payload-key.pub.pem``)."""
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except ValueError as err:
        raise KeyFileError(f"{path} is not a PEM public key: {err}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFileError(f"{path} is not an RSA public key")
    return key


# --- container ----------------------------------------------------------------------------------------


def _manifest_bytes(version: str, image: bytes) -> bytes:
    manifest = {
        "image_sha256": b64(hashlib.sha256(image).digest()),
        "image_size": len(image),
        "version": version,
    }
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode("utf-8")


def build_payload(image: bytes, version: str, private_key: rsa.RSAPrivateKey) -> bytes:
    """The signed container for ``image`` announcing ``version``."""
    if not version:
        raise ValueError("a payload needs a version")
    manifest = _manifest_bytes(version, image)
    body = _HEADER.pack(MAGIC, PAYLOAD_VERSION, len(manifest)) + manifest + image
    return body + private_key.sign(body, padding.PKCS1v15(), hashes.SHA256())


def _read_manifest(data: bytes) -> tuple[dict[str, Any], int]:
    """The manifest and the offset where the image starts; structural errors -> 21/23."""
    if len(data) < _HEADER.size:
        raise PayloadError(ErrorCode.DownloadInvalidMetadataMagicString, "payload is shorter than its header")
    magic, version, length = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise PayloadError(
            ErrorCode.DownloadInvalidMetadataMagicString, f"payload magic is {magic!r}, not b'CrAU'"
        )
    if version != PAYLOAD_VERSION:
        raise PayloadError(
            ErrorCode.DownloadInvalidMetadataMagicString,
            f"payload format version {version} is not {PAYLOAD_VERSION} (an update_engine payload?)",
        )
    if length > MAX_MANIFEST or _HEADER.size + length > len(data):
        raise PayloadError(ErrorCode.DownloadManifestParseError, f"manifest length {length} is out of range")
    raw = data[_HEADER.size : _HEADER.size + length]
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise PayloadError(ErrorCode.DownloadManifestParseError, f"manifest is not JSON: {err}") from None
    except RecursionError:  # json recurses per nesting level: 60,000 '[' exhaust the stack
        raise PayloadError(ErrorCode.DownloadManifestParseError, "manifest is nested too deeply") from None
    if not (
        isinstance(manifest, dict)
        and isinstance(manifest.get("version"), str)
        and manifest["version"]
        and type(manifest.get("image_size")) is int
        and manifest["image_size"] >= 0
        and isinstance(manifest.get("image_sha256"), str)
    ):
        raise PayloadError(
            ErrorCode.DownloadManifestParseError,
            "manifest needs version (str), image_size (int), image_sha256 (str)",
        )
    return manifest, _HEADER.size + length


def verify_payload(
    data: bytes,
    public_key: rsa.RSAPublicKey,
    *,
    expected_size: int | None = None,
    expected_sha256_b64: str | None = None,
) -> PayloadContents:
    """Check a downloaded payload as update_engine does (order and codes: module docstring)."""
    if expected_size is not None and len(data) != expected_size:
        raise PayloadError(
            ErrorCode.PayloadSizeMismatchError, f"payload is {len(data)} bytes, Omaha said {expected_size}"
        )
    if expected_sha256_b64 is not None:
        actual = b64(hashlib.sha256(data).digest())
        if not hmac.compare_digest(actual, expected_sha256_b64):
            raise PayloadError(
                ErrorCode.PayloadHashMismatchError,
                f"payload sha256 is {actual}, Omaha said {expected_sha256_b64}",
            )
    manifest, image_start = _read_manifest(data)
    signed_end = image_start + int(manifest["image_size"])
    signature = data[signed_end:]
    key_bytes = public_key.key_size // 8
    if signed_end > len(data) or not signature:
        raise PayloadError(
            ErrorCode.DownloadPayloadVerificationError, "payload has no signature (truncated?)"
        )
    if len(signature) != key_bytes:
        raise PayloadError(
            ErrorCode.DownloadPayloadVerificationError,
            f"signature is {len(signature)} bytes, the {public_key.key_size}-bit key needs {key_bytes}",
        )
    try:
        signed_digest = public_key.recover_data_from_signature(signature, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise PayloadError(
            ErrorCode.DownloadPayloadPubKeyVerificationError,
            "signature does not verify with this public key (signed by another key, or corrupted)",
        ) from None
    view = memoryview(data)  # hash slices without copying a multi-hundred-MiB payload
    if not hmac.compare_digest(signed_digest, hashlib.sha256(view[:signed_end]).digest()):
        raise PayloadError(
            ErrorCode.DownloadPayloadVerificationError, "payload bytes differ from what was signed (altered)"
        )
    image_sha256 = b64(hashlib.sha256(view[image_start:signed_end]).digest())
    if image_sha256 != manifest["image_sha256"]:
        raise PayloadError(
            ErrorCode.PayloadHashMismatchError, "image sha256 differs from the signed manifest"
        )
    return PayloadContents(str(manifest["version"]), bytes(view[image_start:signed_end]), image_sha256)
