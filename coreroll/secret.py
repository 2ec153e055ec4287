"""`Secret`: a token that never shows in a repr, a log line or a traceback's locals."""

from __future__ import annotations

import hashlib
import hmac


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def matches(self, typed: str) -> bool:
        """Constant-time comparison (of digests, so not even the length shows); never raises."""
        try:
            given = hashlib.sha256(typed.encode("utf-8", "surrogatepass")).digest()
            return hmac.compare_digest(
                given, hashlib.sha256(self._value.encode("utf-8", "surrogatepass")).digest()
            )
        except Exception:
            return False

    def __repr__(self) -> str:
        return "Secret(<hidden>)"

    __str__ = __repr__
