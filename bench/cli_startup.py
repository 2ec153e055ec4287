"""CLI start-up: whole-process wall time of short `coreroll` commands beside `python -c pass`.

Each round runs every command once, in turn (so drift in the machine's speed hits all alike),
as a fresh process from this venv; `coreroll lock status` asks a real embedded etcd (v2 and v3
APIs served, so `--etcd-api auto` asks both). The baseline is `python -c pass` with the same
interpreter, in the same rounds; ratios are per round, then the median.

    .venv/bin/python bench/cli_startup.py [--rounds 21] [--budget 0.15]

Prints a table (median, min, max wall; median user+sys CPU; median ratio to the baseline) and
writes bench/results/cli_startup.json. Exit status 1 when a budgeted command's median passes
the budget.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results_file import write_results
from coreroll.etcd.launcher import EmbeddedEtcd

RESULTS = Path(__file__).resolve().parent / "results" / "cli_startup.json"
BASELINE = "python -c pass"


def commands(python: str, coreroll: str) -> dict[str, tuple[list[str], bool]]:
    """name -> (argv, under the budget?)."""
    return {
        BASELINE: ([python, "-c", "pass"], False),
        "coreroll --help": ([coreroll, "--help"], True),
        "coreroll lock --help": ([coreroll, "lock", "--help"], True),
        "coreroll lock status": ([coreroll, "lock", "status"], True),
        "coreroll lock help": ([coreroll, "lock", "help"], False),
        "coreroll lock -version": ([coreroll, "lock", "-version"], False),
    }


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, user+sys CPU seconds, exit status) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace')[:300]}"
        )
    return wall, cpu, done.returncode


def measure(rounds: int, env: dict[str, str], table: dict[str, tuple[list[str], bool]]) -> dict[str, Any]:
    walls: dict[str, list[float]] = {name: [] for name in table}
    cpus: dict[str, list[float]] = {name: [] for name in table}
    for argv, _ in table.values():  # warm-up: page cache, .pyc files
        run_once(argv, env)
    for index in range(rounds):
        for name, (argv, _) in table.items():
            wall, cpu, _ = run_once(argv, env)
            walls[name].append(wall)
            cpus[name].append(cpu)
        print(f"  round {index + 1}/{rounds}", file=sys.stderr, end="\r", flush=True)
    print(file=sys.stderr)
    out: dict[str, Any] = {}
    for name in table:
        ratios = [w / b for w, b in zip(walls[name], walls[BASELINE], strict=True)]
        out[name] = {
            "wall_median_s": round(statistics.median(walls[name]), 4),
            "wall_min_s": round(min(walls[name]), 4),
            "wall_max_s": round(max(walls[name]), 4),
            "cpu_median_s": round(statistics.median(cpus[name]), 4),
            "ratio_to_baseline_median": round(statistics.median(ratios), 2),
            "budgeted": table[name][1],
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--budget", type=float, default=0.15, help="seconds of wall time, median")
    args = parser.parse_args()
    python = sys.executable
    coreroll = str(Path(python).parent / "coreroll")
    print("starting an embedded etcd (v2 and v3 APIs) for `coreroll lock status`...", file=sys.stderr)
    with EmbeddedEtcd() as etcd:
        env = {**os.environ, "LOCKSMITHCTL_ENDPOINT": etcd.endpoint}
        env.pop("COREROLL_ETCD", None)
        print(
            f"running {args.rounds} rounds of {len(commands(python, coreroll))} commands...", file=sys.stderr
        )
        results = measure(args.rounds, env, commands(python, coreroll))
    header = (
        f"{'command':<26} {'wall median':>12} {'min':>8} {'max':>8} {'cpu median':>11} {'x baseline':>11}"
    )
    print(header)
    print("-" * len(header))
    over = []
    for name, row in results.items():
        mark = ""
        if row["budgeted"] and row["wall_median_s"] > args.budget:
            over.append(name)
            mark = "  OVER BUDGET"
        print(
            f"{name:<26} {row['wall_median_s']:>11.3f}s {row['wall_min_s']:>7.3f}s {row['wall_max_s']:>7.3f}s "
            f"{row['cpu_median_s']:>10.3f}s {row['ratio_to_baseline_median']:>10.2f}x{mark}"
        )
    print(f"budget: median wall <= {args.budget:.2f} s for the budgeted commands; baseline: {BASELINE}")
    write_results(
        RESULTS,
        {
            "benchmark": "cli_startup",
            "rounds": args.rounds,
            "budget_s": args.budget,
            "baseline": BASELINE,
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "load_avg": os.getloadavg(),
            },
            "results": results,
            "over_budget": over,
        },
    )
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
