"""`coreroll server`: the update server's own command line lives in `coreroll.server.command`
(so `python -m coreroll.server` runs it without the rest of the CLI); registered here."""

from __future__ import annotations

from coreroll.server.command import register

__all__ = ["register"]
