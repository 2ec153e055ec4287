"""A real dbus-daemon on a unix socket in a temporary directory, and test services on it: an
update_engine (`com.coreos.update1`) and systemd's RestartUnit, written with dbus-fast."""

# no `from __future__ import annotations`: dbus-fast reads the D-Bus signatures from the annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method, signal

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class DbusDaemon:
    """`dbus-daemon --nofork --print-address`: the printed address is the readiness signal."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("dbus-daemon")
        if binary is None:
            raise RuntimeError(
                "dbus-daemon is not installed (.ci/run installs it: apt-get install dbus-daemon)"
            )
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "bus.conf"
        config.write_text(_CONFIG.format(socket=directory / "bus"))
        self.process = subprocess.Popen(
            [binary, f"--config-file={config}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        self.address = self.process.stdout.readline().strip()
        if not self.address:
            self.stop()
            raise RuntimeError("dbus-daemon printed no address")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class FakeUpdateEngine(ServiceInterface):
    """update_engine's D-Bus interface: GetStatus, AttemptUpdate (starts a check), StatusUpdate."""

    def __init__(self) -> None:
        super().__init__("com.coreos.update1.Manager")
        self.values = [1795770500, 0.0, "UPDATE_STATUS_IDLE", "0.0.0.0", 0]
        self.attempts = 0
        self.attempted = asyncio.Event()

    @method()
    def GetStatus(self) -> "xdssx":  # noqa: F821 (a D-Bus signature)
        return list(self.values)

    @method()
    def AttemptUpdate(self) -> None:
        self.attempts += 1
        self.attempted.set()
        self.set_status(0.0, "UPDATE_STATUS_CHECKING_FOR_UPDATE", "0.0.0.0", 0)

    @signal()
    def StatusUpdate(self) -> "xdssx":  # noqa: F821
        return list(self.values)

    def set_status(self, progress: float, status: str, new_version: str, new_size: int) -> None:
        self.values = [self.values[0], progress, status, new_version, new_size]
        self.StatusUpdate()


class FakeSystemd(ServiceInterface):
    """systemd's Manager.RestartUnit, recording each restart."""

    def __init__(self) -> None:
        super().__init__("org.freedesktop.systemd1.Manager")
        self.restarts: list[tuple[str, str]] = []
        self.restarted = asyncio.Event()

    @method()
    def RestartUnit(self, name: "s", mode: "s") -> "o":  # noqa: F821
        self.restarts.append((name, mode))
        self.restarted.set()
        return "/org/freedesktop/systemd1/job/1"


async def export(address: str, name: str, path: str, interface: ServiceInterface) -> MessageBus:
    bus = await MessageBus(bus_address=address).connect()
    bus.export(path, interface)
    await bus.request_name(name)
    return bus
