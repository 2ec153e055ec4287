"""The admin bearer token.

``load_or_create_token(settings) -> str``: ``settings.token`` if given, else the token file
``<data dir>/token``; when there is none, 32 random bytes (url-safe base64) are written there with
mode 0600 (created exclusively, so a concurrent start never overwrites it).
``read_token_file(path, strict=False) -> str | None`` is what the CLI uses; the server reads with
``strict=True``, which raises ``TokenFileError`` (naming the mode and the chmod to run) for a token
file readable or writable by group or others, as payload.load_private_key does for keys.
``token_matches(header, token)`` checks an ``Authorization`` header in constant time.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

from coreroll.server.settings import ServerSettings


class TokenFileError(Exception):
    """A token file the server must not use (its mode lets other users read it)."""


def read_token_file(path: Path, strict: bool = False) -> str | None:
    try:
        if strict:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise TokenFileError(
                    f"{path} is readable or writable by group/others (mode {mode:04o}): chmod 600 {path}"
                )
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return token or None


def new_token() -> str:
    """32 random bytes, URL-safe base64, never starting with "-": `--token <token>` on a command
    line must not read as an option (1 token in 64 would)."""
    while True:
        token = secrets.token_urlsafe(32)
        if not token.startswith("-"):
            return token


def load_or_create_token(settings: ServerSettings) -> str:
    if settings.token:
        return settings.token
    path = settings.token_path
    existing = read_token_file(path, strict=True)
    if existing:
        return existing
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = new_token()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return read_token_file(path, strict=True) or token
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


def token_matches(authorization: str | None, token: str) -> bool:
    if not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
