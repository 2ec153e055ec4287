"""What msgspec buys the dashboard: reading node status JSON at start (a 100,000-node fleet's
first listing), CPU seconds per `--nodes` documents, median of `--repeat` rounds.

    .venv/bin/python bench/status_parse.py [--nodes 100000] [--repeat 5] [--out bench/results/status_parse.json]

- now: `coreroll.watch.parse.parse_node_status` (msgspec decodes straight into Structs generated
  from the field table, `coreroll.watch.typed_status`);
- baseline, same run: the same documents through Python's json and the field-by-field reader
  (`_checked_report`), i.e. the dashboard without msgspec. Both give equal reports (checked).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results_file import write_results  # noqa: E402
from coreroll.watch.parse import _checked_report, parse_node_status  # noqa: E402
from coreroll.wire import status as wire  # noqa: E402


def without_msgspec(raw: bytes, key: str) -> Any:
    return _checked_report(json.loads(raw), key)


def cpu_seconds(read: Callable[[bytes, str], Any], docs: list[bytes]) -> float:
    started = time.process_time()
    for raw in docs:
        read(raw, "k")
    return time.process_time() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "status_parse.json"))
    args = parser.parse_args()
    docs = [json.dumps(wire.sample_document(f"n{i:06d}")).encode() for i in range(args.nodes)]
    for raw in docs[:1000]:
        assert parse_node_status(raw, "k") == without_msgspec(raw, "k")
    runs: dict[str, list[float]] = {"msgspec": [], "json": []}
    for n in range(args.repeat):  # interleaved: a busy spell of the shared machine hits both
        print(f"  round {n + 1}/{args.repeat}", file=sys.stderr, flush=True)
        runs["msgspec"].append(cpu_seconds(parse_node_status, docs))
        runs["json"].append(cpu_seconds(without_msgspec, docs))
    now, base = statistics.median(runs["msgspec"]), statistics.median(runs["json"])
    print(
        f"{args.nodes:,} status documents, CPU s (median of {args.repeat}): msgspec {now:.3f}, "
        f"json + field-by-field reader {base:.3f}: {base / now:.1f}x"
    )
    write_results(
        args.out,
        {
            "nodes": args.nodes,
            "cpu_s_msgspec": now,
            "cpu_s_json_baseline": base,
            "speedup": round(base / now, 2),
            "runs": runs,
            "command": " ".join(["bench/status_parse.py", *sys.argv[1:]]),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
