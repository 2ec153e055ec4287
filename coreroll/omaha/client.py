"""The client half of Omaha v3, as Flatcar update_engine does it (re-exported by ``coreroll.omaha.protocol``).

- ``build_request(*, version, track, machineid, bootid, oem, oemversion, alephversion, board,
  installsource="scheduler", ping=True, updatecheck=True, events=(), ...) -> bytes``: byte for byte the
  request of ``omaha_request_action.cc`` (``GetRequestXml``): attribute order, 4-space indentation,
  ``<ping active="1"></ping>``, ``delta_okay="false" >``. The body holds, in this order, the ping line
  (if ``ping``), the updatecheck line (if ``updatecheck``), then one line per event. An event with
  ``previous_version`` set is written ``eventtype eventresult previousversion`` (the 3/2 of every check);
  otherwise ``errorcode`` is added when the result is not Success (1), as update_engine does.
  Shapes: check = ping + updatecheck + 3/2 (or 3/0 errorcode 44 after a rollback); ping-only = ping;
  event-only = one event, ``ping=False, updatecheck=False``. ``coreroll_agent=True`` adds
  ``coreroll_agent="1"`` to ``<request>`` (after ``ismachine``): coreroll's agent says so, so the
  server may offer it synthetic payloads it never offers a real update_engine.
  Values are escaped like libxml2 ``xmlEncodeEntitiesReentrant`` (``& < >``, CR, non-ASCII as ``&#xNN;``)
  plus ``"`` -> ``&quot;``, which libxml2 leaves raw (that would make the request malformed).
- ``parse_response(body: bytes) -> ResponseInfo`` follows update_engine's ``ParseResponse``: the first
  ``/response/app/updatecheck``; its ``PollInterval``; ``status`` "noupdate" -> no offer, anything but
  "ok" -> error; for "ok": the first manifest's ``version``, every ``urls/url@codebase`` non-empty, the
  first package with non-empty ``name`` and ``size`` > 0 (sscanf ``%i`` rules), the first action with
  ``event="postinstall"`` and a non-empty ``sha256``. Raises ``OmahaParseError`` with ``.code`` =
  ``ErrorCode.OmahaRequestEmptyResponseError`` (30), ``OmahaRequestXMLParseError`` (31) or
  ``OmahaResponseInvalid`` (34): the errorcode a node reports in its 3/0 event. Bodies over
  ``MAX_RESPONSE_BODY`` (1 MiB, go-omaha's cap) and any DOCTYPE are refused (31).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from lxml import etree

from coreroll.omaha.codes import APP_ID, OS_PLATFORM, OS_VERSION, UPDATER_VERSION, ErrorCode, EventResult
from coreroll.omaha.messages import OmahaEvent, OmahaParseError, ResponseInfo, UpdateOffer
from coreroll.omaha.xmlsafe import parse_untrusted_xml
from coreroll.wirenum import NumberError, parse_int

MAX_RESPONSE_BODY: Final = 1024 * 1024

# uname -m for the boards update_engine knows; the os sp attribute is "<version>_<arch>".
_BOARD_ARCH: Final = {"amd64-usr": "x86_64", "arm64-usr": "aarch64"}


def xml_encode(value: str) -> str:
    """libxml2 ``xmlEncodeEntitiesReentrant(NULL, value)``, plus ``"`` escaped (see module docstring)."""
    out: list[str] = []
    for ch in value:
        if ch == "&":
            out.append("&amp;")
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif ch == '"':
            out.append("&quot;")
        elif ch == "\r":
            out.append("&#13;")
        elif ord(ch) >= 0x80:
            out.append(f"&#x{ord(ch):X};")
        else:
            out.append(ch)
    return "".join(out)


def _signed32(code: int) -> int:
    """update_engine prints errorcodes with %d: a code with bit 31 set goes out negative."""
    code &= 0xFFFFFFFF
    return code - 2**32 if code >= 2**31 else code


def _event_line(event: OmahaEvent) -> str:
    attrs = f'eventtype="{int(event.event_type)}" eventresult="{int(event.result)}"'
    if event.previous_version is not None:
        attrs += f' previousversion="{xml_encode(event.previous_version)}"'
    elif event.result != EventResult.Success:
        attrs += f' errorcode="{_signed32(event.errorcode or 0)}"'
    return f"        <event {attrs}></event>\n"


def build_request(
    *,
    version: str,
    track: str,
    machineid: str,
    bootid: str,
    oem: str,
    oemversion: str,
    alephversion: str,
    board: str,
    installsource: str = "scheduler",
    ping: bool = True,
    updatecheck: bool = True,
    events: Sequence[OmahaEvent] = (),
    appid: str = APP_ID,
    machinealias: str = "",
    lang: str = "en-US",
    hardware_class: str = "",
    os_sp: str | None = None,
    updater_version: str = UPDATER_VERSION,
    coreroll_agent: bool = False,
    multi_manifest_ok: bool = False,
) -> bytes:
    """The request update_engine would send (reference 1.2), as UTF-8 bytes; ``multi_manifest_ok``
    adds ``multi_manifest_ok="true"`` to ``<app>`` (a syncer's request: coreroll.omaha.upstream)."""
    if os_sp is None:
        os_sp = f"{version}_{_BOARD_ARCH.get(board, board.split('-')[0] or 'x86_64')}"
    body = ""
    if ping:
        body += '        <ping active="1"></ping>\n'
    if updatecheck:
        body += "        <updatecheck></updatecheck>\n"
    body += "".join(_event_line(event) for event in events)
    enc = xml_encode
    updater = enc(updater_version)
    agent = ' coreroll_agent="1"' if coreroll_agent else ""
    multi = ' multi_manifest_ok="true"' if multi_manifest_ok else ""
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<request protocol="3.0" version="{updater}" updaterversion="{updater}" '
        f'installsource="{enc(installsource)}" ismachine="1"{agent}>\n'
        f'    <os version="{enc(OS_VERSION)}" platform="{enc(OS_PLATFORM)}" sp="{enc(os_sp)}"></os>\n'
        f'    <app appid="{enc(appid)}" version="{enc(version)}" track="{enc(track)}" bootid="{enc(bootid)}" '
        f'oem="{enc(oem)}" oemversion="{enc(oemversion)}" alephversion="{enc(alephversion)}" '
        f'machineid="{enc(machineid)}" machinealias="{enc(machinealias)}" lang="{enc(lang)}" '
        f'board="{enc(board)}" hardware_class="{enc(hardware_class)}" delta_okay="false"{multi} >\n'
        f"{body}"
        "    </app>\n"
        "</request>\n"
    )
    return text.encode("utf-8")


# sscanf("%" PRIi64): leading blanks, a sign, then hex (0x..), octal (0..) or decimal; trailing junk ignored.
_SCANF_INT = re.compile(r"[ \t\n\r\f\v]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_INT64_MAX = 2**63 - 1
_INT64_DIGITS = 22  # the longest int64 in any base %i reads (octal); longer saturates unparsed


def _scanf_int(raw: str) -> int:
    match = _SCANF_INT.match(raw)
    if not match:
        return 0
    sign, digits = match.groups()
    is_hex = digits[:2] in ("0x", "0X")
    if len((digits[2:] if is_hex else digits).lstrip("0")) > _INT64_DIGITS:
        value = _INT64_MAX  # strtoll saturates; and no int() of a 5,000-digit string
    else:
        value = min(int(digits, 16 if is_hex else 8 if digits.startswith("0") else 10), _INT64_MAX)
    return -value if sign == "-" else value


def _invalid(reason: str) -> OmahaParseError:
    return OmahaParseError(reason, ErrorCode.OmahaResponseInvalid)


def _first(root: etree._Element, path: str) -> etree._Element | None:
    found = root.xpath(path)
    return found[0] if found else None


def parse_response(body: bytes) -> ResponseInfo:
    """Read a response the way update_engine does (see the module docstring)."""
    if not body:
        raise OmahaParseError("empty response", ErrorCode.OmahaRequestEmptyResponseError)
    try:
        root = parse_untrusted_xml(body, MAX_RESPONSE_BODY, "response body")
    except OmahaParseError as err:
        raise OmahaParseError(err.reason, ErrorCode.OmahaRequestXMLParseError) from None
    check = _first(root, "/response/app/updatecheck")
    if check is None:
        raise _invalid("response has no /response/app/updatecheck")
    poll_raw = check.get("PollInterval", "")
    try:  # base::StringToInt: anything but a 32-bit integer reads as 0
        poll = parse_int(poll_raw, "PollInterval", -(2**31), 2**31 - 1, signed=True) if poll_raw else 0
    except NumberError:
        poll = 0
    poll_interval = poll if poll > 0 else None
    status = check.get("status")
    if status is None:
        raise _invalid("updatecheck has no status")
    if status == "noupdate":
        return ResponseInfo("noupdate", None, poll_interval)
    if status != "ok":
        raise _invalid(f"updatecheck status is {status[:60]!r}, not ok or noupdate")
    manifest = _first(root, "/response/app/updatecheck/manifest")
    if manifest is None:
        raise _invalid("response has no manifest")
    codebases = [url.get("codebase", "") for url in root.xpath("/response/app/updatecheck/urls/url")]
    if not codebases:
        raise _invalid("response has no urls/url")
    if not all(codebases):
        raise _invalid("a url has an empty codebase")
    package = _first(root, "/response/app/updatecheck/manifest/packages/package")
    if package is None:
        raise _invalid("response has no package")
    name = package.get("name", "")
    if not name:
        raise _invalid("package has an empty name")
    size = _scanf_int(package.get("size", ""))
    if size <= 0:
        raise _invalid(f"package size {package.get('size', '')[:30]!r} is not a positive integer")
    action = None
    for candidate in root.xpath("/response/app/updatecheck/manifest/actions/action"):
        if candidate.get("event") == "postinstall":
            action = candidate
            break
    if action is None:
        raise _invalid("response has no postinstall action")
    sha256 = action.get("sha256", "")
    if not sha256:
        raise _invalid("postinstall action has an empty sha256")
    offer = UpdateOffer(
        version=manifest.get("version", ""),
        codebase_url=codebases[0],
        package_name=name,
        size=size,
        sha256_b64=sha256,
        sha1_b64=package.get("hash", ""),
        disable_payload_backoff=action.get("DisablePayloadBackoff") == "true",
    )
    urls = tuple((c if c.endswith("/") else c + "/") + name for c in codebases)
    return ResponseInfo("ok", offer, poll_interval, urls, offer.disable_payload_backoff)
