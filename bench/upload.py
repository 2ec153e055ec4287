"""Uploading a real-sized payload: what the whole-payload check (issue 15 section 4) costs, and memory.

A real CrAU payload of ``--mib`` MiB (1 MiB operations, as delta_generator cuts a full update;
signed with a fresh RSA-2048 key) is uploaded to a `coreroll server --payload-key` process, which
reads it whole as update_engine would while streaming it to disk. The baseline, in the same run, is
an opaque upload of the same size (the server only hashes and stores it: what every upload cost
before the check). The server's resident memory is sampled during each upload: it must stay flat,
far below the payload's size. The CLI's local check (`release publish` before uploading) is timed
against plain SHA-256 + SHA-1 hashing of the same file, and an extension payload (bzip2 operations,
whose image download_sysext rebuilds and hashes) against the same hashing.

    .venv/bin/python bench/upload.py [--mib 256] [--extra-mib 32] [--rounds 3]

Prints a table and writes bench/results/upload.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results_file import write_results
from coreroll.omaha.crau import check_file
from coreroll.omaha.crau_layout import Reader
from coreroll.omaha.payload import file_hashes
from coreroll.server.runner import start_server_process
from tests.omaha.crau_builder import build_crau, fleet_key, public_pem

RESULTS = Path(__file__).resolve().parent / "results" / "upload.json"
MIB = 1024 * 1024


class PeakRss:
    """The highest resident set size of a process while the block runs (sampled every 10 ms)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def _upload(url: str, token: str, path: Path, params: dict[str, str]) -> float:
    started = time.perf_counter()
    with path.open("rb") as body:
        reply = httpx.post(f"{url}/api/v1/releases", params=params, content=body, timeout=600,
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"})  # fmt: skip
    elapsed = time.perf_counter() - started
    if reply.status_code != 201:
        raise SystemExit(f"upload of {path.name} answered {reply.status_code}: {reply.text[:300]}")
    return elapsed


def _timed(action: Any) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(mib: int, extra_mib: int, rounds: int, work: Path) -> dict[str, Any]:
    rng = random.Random(15)
    print(
        f"building a {mib} MiB payload and an opaque file of the same size ...", file=sys.stderr, flush=True
    )
    payload = work / "flatcar_production_update.gz"
    image = b"".join(rng.randbytes(MIB) for _ in range(mib))
    payload.write_bytes(build_crau(image, chunk=MIB, compress=False))
    del image
    opaque = work / "opaque.bin"
    with opaque.open("wb") as handle:  # the same size, not CrAU: only hashed and stored
        left = payload.stat().st_size
        handle.write(b"\x1f\x8b")
        left -= 2
        while left:
            handle.write(rng.randbytes(min(left, MIB)))
            left -= min(left, MIB)
    print(f"building a {extra_mib} MiB extension payload (bzip2) ...", file=sys.stderr, flush=True)
    extra = work / "oem-azure.gz"
    half_zeros = b"".join(rng.randbytes(2048) + bytes(2048) for _ in range(extra_mib * MIB // 4096))
    extra.write_bytes(build_crau(half_zeros, chunk=MIB))
    key = work / "update-payload-key.pub.pem"
    key.write_bytes(public_pem(fleet_key()))

    server = start_server_process(work / "data", extra_args=("--payload-key", str(key)))
    uploads: dict[str, list[float]] = {"opaque": [], "checked": []}
    peaks: dict[str, list[int]] = {"opaque": [], "checked": []}
    try:
        idle_rss = psutil.Process(server.process.pid).memory_info().rss
        for n in range(rounds):
            for kind, path, params in (
                ("opaque", opaque, {"version": f"5000.0.{n}", "opaque": "true", "filename": "opaque.bin"}),
                ("checked", payload, {"version": f"5001.0.{n}", "filename": payload.name}),
            ):
                print(f"round {n + 1}/{rounds}: uploading the {kind} file ...", file=sys.stderr, flush=True)
                with PeakRss(server.process.pid) as rss:
                    uploads[kind].append(_upload(server.url, server.token, path, params))
                peaks[kind].append(rss.peak)
    finally:
        server.stop()

    local: dict[str, list[float]] = {"hash": [], "check": [], "extra_hash": [], "extra_check": []}
    for n in range(rounds):
        print(f"round {n + 1}/{rounds}: checking the files locally ...", file=sys.stderr, flush=True)
        local["hash"].append(_timed(lambda: file_hashes(payload)))
        local["check"].append(
            _timed(lambda: check_file(payload, Reader.UPDATE_ENGINE, fleet_key().public_key()))
        )
        local["extra_hash"].append(_timed(lambda: file_hashes(extra)))
        local["extra_check"].append(
            _timed(lambda: check_file(extra, Reader.DOWNLOAD_SYSEXT, fleet_key().public_key()))
        )

    def med(values: list[float]) -> float:
        return round(statistics.median(values), 3)

    size = payload.stat().st_size
    return {
        "command": "python bench/upload.py " + " ".join(sys.argv[1:]),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "payload_bytes": size,
        "extra_bytes": extra.stat().st_size,
        "rounds": rounds,
        "server_upload_s": {k: med(v) for k, v in uploads.items()},
        "server_upload_mib_per_s": {
            k: round(size / MIB / statistics.median(v), 1) for k, v in uploads.items()
        },
        "server_checked_vs_opaque": round(
            statistics.median(uploads["checked"]) / statistics.median(uploads["opaque"]), 2
        ),
        "server_rss_mib": {
            "idle": round(idle_rss / MIB, 1),
            **{f"peak_{k}": round(max(v) / MIB, 1) for k, v in peaks.items()},
        },
        "local_s": {k: med(v) for k, v in local.items()},
        "local_check_vs_hash": round(statistics.median(local["check"]) / statistics.median(local["hash"]), 2),
        "local_extra_check_vs_hash": round(
            statistics.median(local["extra_check"]) / statistics.median(local["extra_hash"]), 2
        ),
        "raw": {"uploads": uploads, "local": local},
    }


def print_table(report: dict[str, Any]) -> None:
    mib = report["payload_bytes"] / MIB
    print(
        f"payload {mib:.0f} MiB, extra {report['extra_bytes'] / MIB:.1f} MiB, medians of {report['rounds']} rounds"
    )
    print(f"{'what':<44} {'seconds':>8} {'MiB/s':>7} {'vs baseline':>12}")
    print("-" * 74)
    up, rate = report["server_upload_s"], report["server_upload_mib_per_s"]
    print(
        f"{'server: opaque upload (baseline: hash+store)':<44} {up['opaque']:>8} {rate['opaque']:>7} {'1.00':>12}"
    )
    print(f"{'server: update_engine payload, checked':<44} {up['checked']:>8} {rate['checked']:>7} "
          f"{report['server_checked_vs_opaque']:>12}")  # fmt: skip
    local = report["local_s"]
    print(
        f"{'CLI: SHA-256 + SHA-1 of the file (baseline)':<44} {local['hash']:>8} {mib / local['hash']:>7.0f} {'1.00':>12}"
    )
    print(f"{'CLI: check as update_engine, with the key':<44} {local['check']:>8} {mib / local['check']:>7.0f} "
          f"{report['local_check_vs_hash']:>12}")  # fmt: skip
    print(f"{'CLI: extra, check as download_sysext':<44} {local['extra_check']:>8} {'':>7} "
          f"{report['local_extra_check_vs_hash']:>12}  (vs hashing it: {local['extra_hash']} s)")  # fmt: skip
    rss = report["server_rss_mib"]
    print(f"server RSS: idle {rss['idle']} MiB, peak during opaque uploads {rss['peak_opaque']} MiB, "
          f"during checked uploads {rss['peak_checked']} MiB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="payload image size in MiB (default 256)")
    parser.add_argument("--extra-mib", type=int, default=32, help="extension image size in MiB (default 32)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="coreroll-bench-upload-") as work:
        report = run(args.mib, args.extra_mib, args.rounds, Path(work))
    print_table(report)
    write_results(RESULTS, report)


if __name__ == "__main__":
    main()
