"""The fleet model alone at 10k and 100k nodes (no etcd, no UI): what a first listing and a
steady stream of changes cost the dashboard's process.

    .venv/bin/python bench/watch_model.py [--sizes 10000 100000] [--changes 10000]
                                          [--out bench/results/watch_model.json]

For each size, median of 3 runs, process CPU seconds:
- snapshot: `FleetModel.apply(EtcdSnapshot)` of N node status JSON values (+ alive keys);
  baseline in the same run: `json.loads` of the same N values, GC paused as the model does
  (the floor any reader pays);
- change: `apply(NodeStatus)` per status change (new progress/status), microseconds each;
- sort: `filter_rows("", column)` for machine id (default order) and version;
- filter: `filter_rows("channel:beta status:down")`; filter_text: free text `filter_rows("node-00")`;
- derived: `counts()`, `channels()`, `groups()`, `lock_groups()` after a change (caches cold).
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import gc
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
from coreroll.watch import updates as u  # noqa: E402
from coreroll.watch.model import FleetModel  # noqa: E402
from tui.sample import STATUS_KEY, sample_updates, status_json  # noqa: E402


def cpu(fn: Callable[[], Any]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def median3(fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(3))


def measure(n: int, changes: int) -> dict[str, Any]:
    updates = sample_updates(n)
    snapshot = next(x for x in updates if isinstance(x, u.EtcdSnapshot))
    raws = [s.raw for s in snapshot.statuses]

    def snap() -> float:
        model = FleetModel()
        return cpu(lambda: model.apply(snapshot))

    def loads_all() -> float:
        gc.disable()  # as the model does for a snapshot: a fair floor
        try:
            return cpu(lambda: [json.loads(raw) for raw in raws])
        finally:
            gc.enable()

    base = median3(loads_all)
    ours = median3(snap)
    model = FleetModel()
    model.apply_many(updates)
    mids = [s.machine_id for s in snapshot.statuses]
    stream = [
        u.NodeStatus(
            mids[i % n],
            STATUS_KEY.format(mids[i % n]),
            status_json(
                mids[i % n], status="UPDATE_STATUS_DOWNLOADING", progress=(i % 100) / 100, channel="beta"
            ),
        )
        for i in range(changes)
    ]
    per_change = cpu(lambda: [model.apply(x) for x in stream]) / changes
    sort_machine = median3(lambda: cpu(lambda: model.filter_rows("", "machine")))
    sort_version = median3(lambda: cpu(lambda: model.filter_rows("", "version")))
    filtered = median3(lambda: cpu(lambda: model.filter_rows("channel:beta status:down", None)))
    filtered_text = median3(lambda: cpu(lambda: model.filter_rows("node-00", None)))

    def derived() -> float:
        model.apply(stream[0])
        model.apply(stream[1])
        return cpu(lambda: (model.counts(), model.channels(), model.groups(), model.lock_groups()))

    return {
        "nodes": n,
        "snapshot_s": round(ours, 3),
        "baseline_json_loads_s": round(base, 3),
        "snapshot_vs_json_loads": round(ours / base, 2) if base else None,
        "change_us": round(per_change * 1e6, 1),
        "sort_machine_s": round(sort_machine, 3),
        "sort_version_s": round(sort_version, 3),
        "filter_s": round(filtered, 3),
        "filter_text_s": round(filtered_text, 3),
        "derived_s": round(derived(), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "watch_model.json"))
    args = parser.parse_args()
    results = []
    for n in args.sizes:
        print(f"measuring {n} nodes ...", file=sys.stderr, flush=True)
        results.append(measure(n, args.changes))
    keys = list(results[0])
    width = max(len(k) for k in keys)
    print(f"{'(CPU seconds unless noted)':<{width}}  " + "  ".join(f"{r['nodes']:>10}" for r in results))
    for key in keys[1:]:
        print(f"{key:<{width}}  " + "  ".join(f"{r[key]!s:>10}" for r in results))
    write_results(args.out, results)


if __name__ == "__main__":
    main()
