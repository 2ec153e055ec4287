"""Characters of each request attribute the server stores: the widths of its database columns.

coreroll/server/schema.py sizes the columns from these and ``parse_request`` refuses a longer value,
so PostgreSQL's VARCHAR(n) never refuses a write. ``APP_WIDTHS``: each stored ``<app>`` attribute's
width (``previousversion`` is held to ``MAX_VERSION`` too).
"""

from __future__ import annotations

from typing import Final

MAX_MACHINE_ID: Final = 64  # systemd's machine id is 32 hex digits
MAX_VERSION: Final = 64  # version and previousversion
MAX_TRACK: Final = 255
MAX_BOOT_ID: Final = 64
MAX_OEM: Final = 255
MAX_OEM_VERSION: Final = 255
MAX_ALEPH_VERSION: Final = 64
MAX_BOARD: Final = 64

APP_WIDTHS: Final = {
    "machineid": MAX_MACHINE_ID,
    "version": MAX_VERSION,
    "track": MAX_TRACK,
    "bootid": MAX_BOOT_ID,
    "oem": MAX_OEM,
    "oemversion": MAX_OEM_VERSION,
    "alephversion": MAX_ALEPH_VERSION,
    "board": MAX_BOARD,
}
