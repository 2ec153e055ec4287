"""What the connection guard (``coreroll.server.connguard``) costs on the update-check path.

    .venv/bin/python bench/connguard.py [--seconds 3] [--rounds 3] [--connections 32] [--machines 200]
                                        [--out bench/results/connguard.json]

Two servers in this process (each uvicorn on its own thread and loop, SQLite in a temp dir, the
fixed-response route on): the server as shipped, with the guard (head/body/write bounds, connection
cap; it tracks every read and is swept every 0.5 s), and the baseline: the same server with uvicorn's
plain HTTP protocol. ``bench/omaha.py``'s load generator (its own process, keep-alive HTTP/1.1,
closed loop) sends update_engine's check to ``/v1/update/`` and to ``/bench/fixed`` (the framework
ceiling), alternating the servers round by round so load from elsewhere on a shared machine hits
both alike. Reported per server (median over rounds): the server thread's CPU time per check (from
/proc/self/task/<tid>/stat: what the guard adds, little moved by other load), checks/s, median and
p99; and the guarded / plain ratios (medians of per-round ratios). Target: the guard adds at most 5%
CPU per check.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.omaha import run_loadgen  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from coreroll.server import runner  # noqa: E402
from coreroll.server.settings import ServerSettings  # noqa: E402

ROUTES = {"omaha": "/v1/update/", "fixed": "/bench/fixed"}


def start(base: Path, guarded: bool) -> runner.RunningServer:
    settings = ServerSettings(data_dir=base / ("guarded" if guarded else "plain"), fixed_response_route=True)
    if guarded:
        return runner.run_server_in_thread(settings)
    shipped = runner.guarded_protocol
    runner.guarded_protocol = lambda base_class, _guard: base_class  # type: ignore[assignment]
    try:
        return runner.run_server_in_thread(settings)
    finally:
        runner.guarded_protocol = shipped


def thread_cpu(server: runner.RunningServer) -> float:
    """CPU seconds (user + system) the server's thread has used so far."""
    fields = Path(f"/proc/self/task/{server._thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--machines", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "connguard.json"))
    args = parser.parse_args()
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {r: {"guarded": [], "plain": []} for r in ROUTES}
    with tempfile.TemporaryDirectory(prefix="coreroll-bench-guard-") as tmp:
        servers = {"guarded": start(Path(tmp), True), "plain": start(Path(tmp), False)}
        try:
            for number in range(args.rounds):
                order = ["guarded", "plain"] if number % 2 == 0 else ["plain", "guarded"]
                for route, path in ROUTES.items():
                    for name in order:
                        print(
                            f"round {number + 1}/{args.rounds}: {route} on the {name} server ...",
                            file=sys.stderr,
                        )
                        cpu = thread_cpu(servers[name])
                        result = run_loadgen(servers[name].url, path, args.machines, args.seconds,
                                             args.connections, 0)  # fmt: skip
                        assert result["non_200"] == 0, result
                        result["cpu_us_per_check"] = (
                            (thread_cpu(servers[name]) - cpu) / result["requests"] * 1e6
                        )
                        runs[route][name].append(result)
        finally:
            for server in servers.values():
                server.stop()
    summary: dict[str, Any] = {}
    keys = ("cpu_us_per_check", "per_second", "median_ms", "p99_ms")
    print(f"{'route':<7} {'server':<8} {'CPU us/check':>12} {'checks/s':>9} {'median ms':>10} {'p99 ms':>8}")
    for route, by_server in runs.items():
        pairs = list(zip(by_server["guarded"], by_server["plain"], strict=True))
        cpu_ratio = statistics.median(g[keys[0]] / p[keys[0]] for g, p in pairs)
        rate_ratio = statistics.median(g[keys[1]] / p[keys[1]] for g, p in pairs)
        summary[route] = {"cpu_ratio": round(cpu_ratio, 3), "rate_ratio": round(rate_ratio, 3)}
        for name, results in by_server.items():
            row = {key: round(statistics.median(r[key] for r in results), 2) for key in keys}
            summary[route][name] = row
            cells = f"{row[keys[0]]:>12.1f} {row[keys[1]]:>9.0f} {row[keys[2]]:>10.2f} {row[keys[3]]:>8.2f}"
            print(f"{route:<7} {name:<8} {cells}")
        print(
            f"{route:<7} guarded/plain: CPU per check {cpu_ratio:.3f}, checks/s {rate_ratio:.3f} (medians of per-round ratios)"
        )
    write_results(args.out, {"settings": vars(args), "summary": summary, "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
