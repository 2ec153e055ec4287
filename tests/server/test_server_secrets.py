"""`coreroll server`'s secrets and files as a real process (issue 16, defect 13, server part): a
pass-phrase-protected TLS key is one line saying so (before: OpenSSL prompted `Enter PEM pass
phrase:` and the server said `[Errno 22] Invalid argument`); `--omaha-secret` on the command line
is readable by every local user in /proc/<pid>/cmdline, so the server warns and points at
COREROLL_OMAHA_SECRET, which keeps it out; and the systemd unit's LimitNOFILE fits the default
connection cap."""

from __future__ import annotations

import argparse
import configparser
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from coreroll.cli import main
from coreroll.server.command import _settings as server_settings
from coreroll.server.command import register, secret_warnings
from coreroll.server.connguard import files_needed
from coreroll.server.runner import start_server_process
from coreroll.server.settings import ServerSettings
from tests.security.certs import make_pki
from tests.server.helpers import HTTP, REFERENCE_REQUEST

SECRET = "omaha-S3cret_path"
UNIT = Path(__file__).resolve().parents[2] / "deploy" / "coreroll-server.service"


def test_an_encrypted_tls_key_is_one_line_without_a_prompt(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    pki = make_pki(tmp_path / "pki")
    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass phrase"),
        )
    )
    encrypted.chmod(0o600)
    argv = [
        "server",
        "--data",
        str(tmp_path / "data"),
        "--tls-cert",
        str(pki.server_cert),
        "--tls-key",
        str(encrypted),
    ]
    assert main(argv) == 2
    out, err = capfd.readouterr()  # file descriptors: OpenSSL prompts there, not on sys.stderr
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "encrypted key, no pass phrase" in lines[0] and str(encrypted) in lines[0], (
        lines
    )
    assert "Enter PEM pass phrase" not in out + err and "Errno" not in err


@pytest.mark.slow
def test_the_omaha_secret_on_the_command_line_is_warned_about(tmp_path: Path) -> None:
    server = start_server_process(tmp_path / "data", extra_args=("--omaha-secret", SECRET))
    try:
        cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes()
        assert SECRET.encode() in cmdline  # what every local user can read: hence the warning
        log = (tmp_path / "data" / "server.log").read_text()
        assert "--omaha-secret on the command line is visible to every local user" in log, log
        assert "set COREROLL_OMAHA_SECRET instead" in log
        reply = HTTP.post(f"{server.url}/v1/update/{SECRET}/", content=REFERENCE_REQUEST,
                          headers={"Content-Type": "text/xml"})  # fmt: skip
        assert reply.status_code == 200
    finally:
        server.stop()


def test_the_omaha_secret_from_the_environment_is_used_without_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    monkeypatch.setenv("COREROLL_OMAHA_SECRET", SECRET)
    args = parser.parse_args(["server"])
    assert server_settings(args).omaha_secret == SECRET and secret_warnings(args) == []
    flagged = parser.parse_args(["server", "--omaha-secret", SECRET, "--token", "t0ken-on-the-line"])
    assert [w.split(" on the command line")[0] for w in secret_warnings(flagged)] == [
        "warning: --token",
        "warning: --omaha-secret",
    ]


def test_the_systemd_unit_allows_the_files_the_default_connection_cap_needs() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(UNIT)
    service = unit["Service"]
    assert int(service["LimitNOFILE"]) >= files_needed(ServerSettings.max_connections)
    assert "--omaha-secret" not in service["ExecStart"] and "--token" not in service["ExecStart"]
    assert "COREROLL_OMAHA_SECRET" in UNIT.read_text()  # documented where the secrets go
