"""Payload downloads: ``GET``/``HEAD /packages/<version>/<board>/<filename>`` (releases from before
boards: ``/packages/<version>/<filename>``) with single-range support. Payloads and extra packages
alike.

Only published files are served (the path is looked up in the catalog, never joined blindly).
``parse_range(header, size) -> (start, end) | None`` raises ``RangeNotSatisfiable`` for a range
that starts beyond the file; a malformed or multi-range header is ignored (whole file, 200).
Positions are ASCII digits of any length (``coreroll.wirenum.parse_capped``): a start past the
end is 416, an end or a suffix past the file is clamped to it (RFC 9110, 14.1.2).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from coreroll.omaha.xmlsafe import short
from coreroll.server.catalog import Catalog
from coreroll.wirenum import parse_capped

CHUNK = 256 * 1024
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")


class RangeNotSatisfiable(ValueError):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Inclusive (start, end) for ``bytes=a-b`` / ``a-`` / ``-n``; None means the whole file."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if not match or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":
        length = parse_capped(last, size)
        if not length:
            raise RangeNotSatisfiable(header)
        return size - length, size - 1
    start = parse_capped(first, size)
    end = parse_capped(last, size) if last else size - 1
    if start is None or end is None:
        return None
    if start >= size:
        raise RangeNotSatisfiable(header)
    if end < start:
        return None
    return start, min(end, size - 1)


def _read(path: Path, start: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(start)
        while length > 0:
            chunk = handle.read(min(CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


async def serve_package(request: Request, catalog: Catalog, packages_dir: Path) -> Response:
    parts = [p for p in request.path_params["path"].split("/") if p]  # codebase + "/" may double a slash
    file = catalog.file_at("/".join(parts))
    if file is None:
        return JSONResponse({"error": f"no package {'/'.join(parts)!r}"}, status_code=404)
    path = packages_dir / file.path
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return JSONResponse({"error": f"package file {file.path} is missing on the server"}, 404)
    headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
    try:
        span = parse_range(request.headers.get("range"), size)
    except RangeNotSatisfiable:
        shown = short(request.headers.get("range", ""), 60)
        return JSONResponse(
            {"error": f"range {shown!r} is beyond the file ({size} bytes)"},
            status_code=416,
            headers={"Content-Range": f"bytes */{size}"},
        )
    status = 200
    start, end = 0, size - 1
    if span is not None:
        start, end = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = max(0, end - start + 1)
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    return StreamingResponse(_read(path, start, length), status_code=status, headers=headers)
