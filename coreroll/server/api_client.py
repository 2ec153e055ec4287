"""A small synchronous client for the server's HTTP API (used by the CLI commands).

- ``resolve_server(flag)``: ``--server``, else ``COREROLL_SERVER``, else ``http://127.0.0.1:8400``.
- ``resolve_token(flag)``: ``--token``, else ``COREROLL_TOKEN``, else the token file the server
  wrote under the default data dir (``coreroll.server.settings.default_data_dir()``), else None.
- ``ApiClient(server, token)``: ``get(path, **params)``, ``send(method, path, body)``,
  ``upload(path, file, params)``; each returns the decoded JSON or raises ``ApiError`` whose
  ``str()`` is one line naming the server and what it said.
- ``add_connection_flags(parser, top_level)``: ``--server`` / ``--token`` on a parser; sub-level
  copies use SUPPRESS defaults so a flag typed before the subcommand is not reset.
"""

from __future__ import annotations

import argparse
import os
from typing import IO, Any

import httpx

from coreroll.server.auth import read_token_file
from coreroll.server.settings import default_data_dir

DEFAULT_SERVER = "http://127.0.0.1:8400"


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def resolve_server(flag: str | None) -> str:
    return (flag or os.environ.get("COREROLL_SERVER") or DEFAULT_SERVER).rstrip("/")


def resolve_token(flag: str | None) -> str | None:
    return flag or os.environ.get("COREROLL_TOKEN") or read_token_file(default_data_dir() / "token")


def add_connection_flags(parser: argparse.ArgumentParser, top_level: bool = False) -> None:
    default = None if top_level else argparse.SUPPRESS
    parser.add_argument("--server", metavar="URL", default=default,
                        help=f"update server (default: COREROLL_SERVER, else {DEFAULT_SERVER})")  # fmt: skip
    parser.add_argument("--token", metavar="T", default=default,
                        help="admin token (default: COREROLL_TOKEN, else the server's token file)")  # fmt: skip


class ApiClient:
    def __init__(self, server: str, token: str | None, timeout: float = 60.0) -> None:
        self.server = server
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=server, headers=headers, timeout=timeout)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ApiClient:
        return cls(resolve_server(getattr(args, "server", None)), resolve_token(getattr(args, "token", None)))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            reply = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(0, f"cannot reach the update server at {self.server}: {exc}") from None
        if reply.status_code >= 400:
            try:
                message = reply.json().get("error") or reply.text
            except ValueError:
                message = reply.text.strip()[:200]
            if reply.status_code == 401 and not self.token:
                message += " (no token: pass --token, set COREROLL_TOKEN, or run on the server host)"
            raise ApiError(reply.status_code, f"{self.server}: {message}")
        return reply.json()

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def send(self, method: str, path: str, body: Any = None) -> Any:
        return self._call(method, path, json=body if body is not None else {})

    def upload(self, path: str, file: IO[bytes], params: dict[str, str]) -> Any:
        return self._call("POST", path, params=params, content=file,
                          headers={"Content-Type": "application/octet-stream"})  # fmt: skip
