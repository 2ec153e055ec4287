"""Typed Omaha messages shared by the server and client halves of ``coreroll.omaha.protocol``.

Import them from ``coreroll.omaha.protocol``; this module only exists to keep the parsers small.

- ``OmahaParseError(reason, code=None)``: any request or response that is not acceptable. ``reason`` is
  short, names what was wrong and where, and never contains a stack trace. ``code`` is set by the client
  side (``parse_response``) to the update_engine ``ErrorCode`` it would report (30 empty response,
  31 XML parse error, 34 invalid response); it is ``None`` on the server side.
- ``OmahaEvent``, ``OmahaApp``, ``OmahaRequest``: a parsed request.
- ``UpdateOffer``, ``AppResponse``: what the server answers per app; ``ResponseInfo`` what a client
  reads back from a response.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field


class OmahaParseError(ValueError):
    """An Omaha body that cannot be accepted; ``str(err)`` is the short reason."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(slots=True)
class OmahaEvent:
    """One ``<event>``. ``errorcode`` is the unsigned 32-bit value (flag bits included) or None."""

    event_type: int
    result: int
    errorcode: int | None = None
    previous_version: str | None = None


@dataclass(slots=True)
class OmahaApp:
    """One ``<app>`` of a request, with the attributes update_engine sends ("" when absent)."""

    appid: str
    version: str
    track: str
    bootid: str
    machineid: str
    oem: str = ""
    oemversion: str = ""
    alephversion: str = ""
    board: str = ""
    machinealias: str = ""
    ping: bool = False
    updatecheck: bool = False
    events: list[OmahaEvent] = field(default_factory=list)


@dataclass(slots=True)
class OmahaRequest:
    """A parsed ``<request>``. ``updater_version`` is ``updaterversion`` (else ``version``).

    ``coreroll_agent``: the request carries ``coreroll_agent="1"`` on ``<request>``, which only
    coreroll's node agent sends (update_engine's request is a fixed template that has no such
    attribute): such a client can apply coreroll's synthetic payloads.
    """

    protocol: str
    updater_version: str
    installsource: str
    ismachine: bool
    os_platform: str
    os_version: str
    os_sp: str
    apps: list[OmahaApp]
    coreroll_agent: bool = False


@dataclass(frozen=True, slots=True)
class ExtraPackage:
    """A further ``<package>`` of the manifest, as Nebraska lists a release's extra files (Flatcar's
    oem-*.gz / flatcar-*.gz add-ons): downloaded from the same codebase; update_engine itself only
    reads the first package."""

    name: str
    size: int
    sha256_b64: str
    sha1_b64: str

    @property
    def sha256_hex(self) -> str:
        """``hash_sha256`` as Nebraska sends it and ue-rs reads it (``sha256_from_hex_str``): lowercase hex."""
        return base64.b64decode(self.sha256_b64).hex()


@dataclass(frozen=True, slots=True)
class UpdateOffer:
    """An update the server offers: the client downloads ``codebase_url`` + "/" + ``package_name``.

    ``sha256_b64`` goes on the postinstall action (update_engine compares it with the base64 SHA-256 of
    the payload); ``sha1_b64`` is the package ``hash`` (ignored by update_engine, kept as Nebraska sends it).
    """

    version: str
    codebase_url: str
    package_name: str
    size: int
    sha256_b64: str
    sha1_b64: str = ""
    disable_payload_backoff: bool = True
    extras: tuple[ExtraPackage, ...] = ()

    @property
    def payload_url(self) -> str:
        """The URL update_engine builds from the codebase and the package name."""
        base = self.codebase_url if self.codebase_url.endswith("/") else self.codebase_url + "/"
        return base + self.package_name


@dataclass(slots=True)
class AppResponse:
    """The answer for one app.

    ``updatecheck``: None when the request had no ``<updatecheck>``, ``"noupdate"``, an error status
    string (e.g. ``"error-internal"``), or an ``UpdateOffer``. ``ping`` adds ``<ping status="ok"/>``;
    ``event_count`` adds that many ``<event status="ok"/>``; ``poll_interval`` (seconds) sets the
    updatecheck ``PollInterval`` attribute.
    """

    appid: str
    status: str = "ok"
    updatecheck: str | UpdateOffer | None = None
    ping: bool = False
    event_count: int = 0
    poll_interval: int | None = None


@dataclass(frozen=True, slots=True)
class ResponseInfo:
    """What update_engine takes from a response: ``status`` is "ok" or "noupdate"; ``offer`` is set for "ok".

    ``payload_urls`` are every codebase joined with the package name, in order (update_engine tries them
    in turn); ``disable_payload_backoff`` is the postinstall action's ``DisablePayloadBackoff == "true"``.
    """

    status: str
    offer: UpdateOffer | None
    poll_interval: int | None
    payload_urls: tuple[str, ...] = ()
    disable_payload_backoff: bool = False
