"""The trailing-slash redirect, only for a slash the client sent as one.

``redirect_real_slashes(router)``: turns Starlette's ``redirect_slashes`` off and puts in its place,
as the router's default (what runs when no route matched), a redirect (307) to the path with one
trailing slash less (or more) when that path has a route. Starlette routes on the decoded path,
so a path value that is a percent-encoded slash (``/api/v1/instances/%2F``, a machine id "/") looked
like a trailing slash, and the client was sent to the instance list instead of being told the
machine is unknown. Here the redirect happens only when the raw path ends in exactly one literal
``/`` (or in none); anything else is the router's usual 404. The Location is built from the request
as before, so behind a proxy it carries the public origin (``coreroll.server.forwarded``).
"""

from __future__ import annotations

from starlette.datastructures import URL
from starlette.responses import RedirectResponse
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Receive, Scope, Send


def redirect_real_slashes(router: Router) -> None:
    not_found: ASGIApp = router.default
    router.redirect_slashes = False

    async def redirect_or_not_found(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if scope["type"] == "http" and path != "/":
            raw: bytes = scope.get("raw_path") or path.encode()
            if raw.endswith(b"/"):  # a literal slash: the decoded path ends with it too
                other = "" if raw.endswith(b"//") else path[:-1]
            else:  # a decoded path ending in "/" here came from an encoded slash
                other = "" if path.endswith("/") else path + "/"
            if other:
                moved = {**scope, "path": other}
                if any(route.matches(moved)[0] is not Match.NONE for route in router.routes):
                    await RedirectResponse(url=str(URL(scope=moved)))(scope, receive, send)
                    return
        await not_found(scope, receive, send)

    router.default = redirect_or_not_found
