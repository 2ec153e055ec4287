"""What the dashboard costs on the wire: bytes written to the terminal per second, measured on the
master side of a real pty, while etcd takes `rate` node status changes per second.

    result = measure(nodes=10_000, rate=1000, duration=20.0, sizes=[(80, 24), (160, 48)])

For each terminal size, back to back on one embedded etcd filled with `nodes` statuses:
- the real dashboard: `python -m coreroll dash --etcd URL` with TERM=xterm-256color (what SSH
  passes on; no COLORTERM), its stdin/stdout/stderr the slave side of a pty of that size;
- the baseline: the same app built by `tui.run.build_app` from the same flags' setup, but with the whole
  screen refreshed at every repaint (`screen.refresh()`: Textual then redraws every cell, as a
  program without a line diff would), started by `python bench/dashboard.py --child tty-full ...`.
After `warmup` seconds (the listing read in and painted), `rate` changes/s are written to etcd for
`duration` seconds; the bytes read from the master side are counted per 1-second window and the
median is reported, with the median of the idle seconds before the load. A 256 kbit/s link carries
32,000 bytes/s: the report gives each rate as a fraction of it (over 1: the screen falls behind by
that much minus one second every second).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import signal
import statistics
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.watch_etcd import STATUSES, fill, mid_of, status
from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.launcher import EmbeddedEtcd
from coreroll.etcd.v3 import connect_v3
from coreroll.wire.keys import status_key

ROOT = Path(__file__).resolve().parent.parent
LINK_BYTES_S = 256_000 / 8  # a 256 kbit/s link


class PtyApp:
    """A program on the slave side of a new pty; a thread drains the master side and notes
    (time, bytes) for every read, so the program never blocks on a full pty buffer."""

    def __init__(self, cmd: Sequence[str], size: tuple[int, int]) -> None:
        master, slave = pty.openpty()
        cols, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "NO_COLOR", "TEXTUAL")}
        env.update(TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows), PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            list(cmd), stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, start_new_session=True
        )
        os.close(slave)
        self.master = master
        self.reads: list[tuple[float, bytes]] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the slave side is closed (the program ended)
                return
            if not data:
                return
            self.reads.append((time.monotonic(), data))

    def bytes_between(self, start: float, end: float) -> int:
        return sum(len(data) for t, data in list(self.reads) if start <= t < end)

    def tail(self) -> str:
        """The last things written, for an error report."""
        return b"".join(data for _, data in self.reads[-20:]).decode(errors="replace")[-2000:]

    def per_second(self, start: float, end: float) -> list[int]:
        return [self.bytes_between(start + i, start + i + 1) for i in range(int(end - start))]

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            os.write(self.master, b"q")  # the dashboard's quit key
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(10)
        self._reader.join(5)
        os.close(self.master)
        return self.proc.returncode


async def write_changes(client: Any, nodes: int, rate: int, duration: float, seq0: int) -> int:
    """`rate` status puts per second for `duration` seconds, each to a node picked in turn."""
    start = time.monotonic()
    pending: set[asyncio.Task[Any]] = set()
    total = int(rate * duration)
    for n in range(total):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        seq = seq0 + n
        i = (seq * 7919) % nodes
        raw = status(mid_of(i), seq, STATUSES[seq % len(STATUSES)], (seq % 100) / 100)
        put = asyncio.create_task(client.put(status_key(mid_of(i)).encode(), raw))
        pending.add(put)
        put.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)
    return total


def app_command(endpoint: str, full_repaint: bool) -> list[str]:
    if full_repaint:
        return [
            sys.executable,
            str(ROOT / "bench" / "dashboard.py"),
            "--child",
            "tty-full",
            "--etcd",
            endpoint,
        ]
    return [sys.executable, "-m", "coreroll", "dash", "--etcd", endpoint]


async def run_one(
    endpoint: str, client: Any, nodes: int, size: tuple[int, int], full_repaint: bool,
    rate: int, warmup: float, duration: float, seq0: int,
) -> dict[str, Any]:  # fmt: skip
    label = "full repaint (baseline)" if full_repaint else "dashboard"
    print(f"  {size[0]}x{size[1]} {label}: {warmup:.0f}s to load, then {rate}/s for {duration:.0f}s",
          file=sys.stderr, flush=True)  # fmt: skip
    app = PtyApp(app_command(endpoint, full_repaint), size)
    try:
        started = time.monotonic()
        await asyncio.sleep(warmup)
        if app.proc.poll() is not None:
            raise RuntimeError(f"the dashboard exited early:\n{app.tail()}")
        idle_start = started + warmup / 2
        load_start = time.monotonic()
        await write_changes(client, nodes, rate, duration, seq0)
        load_end = time.monotonic()
        await asyncio.sleep(0.5)
        if app.proc.poll() is not None:
            raise RuntimeError(f"the dashboard exited under load:\n{app.tail()}")
    finally:
        code = app.stop()
    idle = app.per_second(idle_start, load_start)
    loaded = app.per_second(load_start, load_end)
    return {
        "size": f"{size[0]}x{size[1]}",
        "full_repaint": full_repaint,
        "exit_code": code,
        "idle_bytes_s_median": statistics.median(idle) if idle else None,
        "bytes_s_median": statistics.median(loaded),
        "bytes_s_max": max(loaded),
        "bytes_s_windows": loaded,
        "startup_bytes": app.bytes_between(started, idle_start),
    }


def link_note(bytes_s: float) -> str:
    share = bytes_s / LINK_BYTES_S
    if share <= 1:
        return f"{share:.0%} of a 256 kbit/s link"
    return f"{share:.1f}x a 256 kbit/s link: falls {share - 1:.1f} s further behind every second"


async def measure_async(
    nodes: int, rate: int, duration: float, sizes: Sequence[tuple[int, int]], warmup: float
) -> dict[str, Any]:
    with EmbeddedEtcd() as etcd:
        client = await connect_v3(EtcdConfig(endpoints=(etcd.endpoint,)))
        try:
            print(f"  filling etcd with {nodes} node statuses", file=sys.stderr, flush=True)
            await fill(client, nodes)
            runs = []
            seq0 = 1
            for size in sizes:  # each pair back to back
                for full in (False, True):
                    runs.append(
                        await run_one(etcd.endpoint, client, nodes, size, full, rate, warmup, duration, seq0)
                    )
                    seq0 += int(rate * duration)
        finally:
            await client.close()
    pairs = []
    for size in sizes:
        name = f"{size[0]}x{size[1]}"
        ours = next(r for r in runs if r["size"] == name and not r["full_repaint"])
        base = next(r for r in runs if r["size"] == name and r["full_repaint"])
        ratio = ours["bytes_s_median"] / base["bytes_s_median"] if base["bytes_s_median"] else None
        pairs.append({
            "size": name,
            "bytes_s": ours["bytes_s_median"],
            "baseline_bytes_s": base["bytes_s_median"],
            "ratio": round(ratio, 3) if ratio is not None else None,
            "idle_bytes_s": ours["idle_bytes_s_median"],
            "link_256kbit": link_note(ours["bytes_s_median"]),
            "baseline_link_256kbit": link_note(base["bytes_s_median"]),
        })  # fmt: skip
    return {
        "nodes": nodes,
        "rate": rate,
        "duration_s": duration,
        "fed": "etcd puts from the bench process (aetcd), read by the app's own EtcdSource",
        "term": "TERM=xterm-256color, no COLORTERM",
        "baseline": "the same app with screen.refresh() at every repaint (every cell redrawn per tick)",
        "pairs": pairs,
        "runs": runs,
    }


def measure(
    nodes: int, rate: int, duration: float, sizes: Sequence[tuple[int, int]], warmup: float = 6.0
) -> dict[str, Any]:
    return asyncio.run(measure_async(nodes, rate, duration, sizes, warmup))


def run_full_repaint_app(argv: Sequence[str]) -> int:
    """The baseline app: the real dashboard whose every repaint redraws the whole screen."""
    import argparse

    from coreroll.commands.dash import add_arguments
    from coreroll.commands.dashboard.wiring import dashboard_setup
    from tui.run import build_app

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    app = build_app(dashboard_setup(parser.parse_args(list(argv))))
    repaint = app.repaint

    def full_repaint(full: bool = False) -> None:
        repaint(full)
        app.screen.refresh()

    app.repaint = full_repaint  # type: ignore[method-assign]
    app.pump.repaint = full_repaint
    return int(app.run() or 0)


def print_pairs(result: dict[str, Any]) -> None:
    print(
        f"terminal bytes/s, {result['nodes']} nodes, {result['rate']} changes/s into etcd (median of 1 s windows):"
    )
    for pair in result["pairs"]:
        print(
            f"  {pair['size']:>7}: {pair['bytes_s']:,.0f} B/s ({pair['link_256kbit']}); full repaint per tick "
            f"{pair['baseline_bytes_s']:,.0f} B/s ({pair['baseline_link_256kbit']}); ratio {pair['ratio']}; "
            f"idle {pair['idle_bytes_s']:,.0f} B/s"
        )
