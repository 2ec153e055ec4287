"""A test-only pause inside a migration, so a test can kill a server while it holds the transaction.

``COREROLL_TEST_MIGRATION_PAUSE="<revision> <unix socket path>"``: right after ``<revision>`` ran
(its changes not yet committed), connect to the socket, send ``paused after <revision>\\n`` and
block until the test answers or closes the connection. Unset (always, outside tests): nothing.
"""

from __future__ import annotations

import os
import socket

PAUSE_VARIABLE = "COREROLL_TEST_MIGRATION_PAUSE"


def pause_hook(revision: str) -> None:
    wanted, _, path = os.environ.get(PAUSE_VARIABLE, "").partition(" ")
    if not path or wanted != revision:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
        conn.sendall(f"paused after {revision}\n".encode())
        conn.recv(1)  # the test's answer (or EOF: the test is gone)
