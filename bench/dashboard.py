"""Dashboard benchmark, headless: is the screen fast enough at fleet scale?

    .venv/bin/python bench/dashboard.py [--duration 60] [--nodes 10000] [--big 100000] [--rate 1000]
                                        [--wire-duration 20] [--no-baseline] [--repeat 3]
                                        [--out bench/results/dashboard.json]

What is measured (each scenario in its own process, so memory numbers do not mix):
- first paint: from creating the app, with the whole fleet (one EtcdSnapshot of N node status
  JSON values + a FeedSnapshot) waiting in its buffer, to the end of the first screen update that
  shows the table's rows; and to the first that shows every node ("all loaded and on screen").
  Includes parsing every status JSON in the model. Median of `--repeat` fresh processes.
- load: `--rate` node status changes per second for `--duration` seconds, fed to the model
  DIRECTLY (through the app's UpdateBuffer, exactly where EtcdSource would put them; no etcd in
  the loop, so the numbers are the dashboard's own). Status JSON is pre-built from templates so
  the feeder's own cost is small.
  - change to screen: from `buffer.put` of a change to the end of the first screen update after the
    repaint that applied it (p50/p99/max).
  - keypress: from creating the key event to the end of the first screen update that shows its
    effect (cursor row moved; filter text applied to the table), measured inside the app.
    Half the keys move the cursor, half edit the filter (type "node-00" a letter at a time, then
    backspace it away; every edit re-filters the 10,000 rows).
  - CPU: process CPU seconds / wall seconds over the load; memory: peak RSS.
- baseline (same run): Textual's DataTable with the same N rows and columns, time to first paint.
- terminal bytes/s (`bench/terminal_bytes.py`, skipped with `--wire-duration 0`): the real
  dashboard in a real pty at 80x24 and 160x48 over an embedded etcd with N nodes taking `--rate`
  changes/s, beside a baseline in the same run: the same app redrawing the whole screen at every
  repaint. Median bytes/s over 1-second windows, and what a 256 kbit/s link makes of it.
Prints a table and writes JSON (medians and ratios).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from textual import events  # noqa: E402

from bench import terminal_bytes  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from coreroll.watch import updates as u  # noqa: E402
from coreroll.watch.model import FleetModel  # noqa: E402
from tui.app import DashApp  # noqa: E402
from tui.sample import STATUS_KEY, STATUSES, machine_id, sample_updates, status_json  # noqa: E402
from tui.textual_compat import DisplayHookApp  # noqa: E402

SIZE = (160, 48)


class BenchApp(DisplayHookApp, DashApp):
    """DashApp that timestamps every screen update (`on_display`) and checks pending probes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.t_created = time.monotonic()
        self.cpu_created = time.process_time()
        self.first_paint: float | None = None
        self.first_paint_cpu: float | None = None
        self.all_loaded: float | None = None  # every node in the table and on screen
        self.all_loaded_cpu: float | None = None  # the same on this process's CPU clock
        self.repaints_to_load = 0
        self.expect_rows = 0
        self.applied: list[
            list[tuple[float, float]]
        ] = []  # put-times of changes applied by repaints not yet shown
        # every latency twice: on the wall clock, and on this process's CPU clock, i.e. without the
        # time the OS gave to other processes (the 2 shared cores are busy with other work)
        self.change_latency: list[float] = []
        self.change_latency_cpu: list[float] = []
        self.key_probe: tuple[tuple[float, float], Any, str] | None = None
        self.key_latency: dict[str, list[float]] = {"cursor": [], "filter": []}
        self.key_latency_cpu: dict[str, list[float]] = {"cursor": [], "filter": []}
        self.put_times: dict[str, tuple[float, float]] = {}
        self.drained: list[list[tuple[float, float]]] = []
        self.on_drain = self.note_drain
        self.on_repaint = self.note_repaint

    def on_display(self) -> None:
        now = time.monotonic()
        if self.first_paint is None or self.all_loaded is None:
            try:
                shown = len(self.main_screen.table.rows)
            except Exception:
                shown = 0
            if shown and self.first_paint is None:
                self.first_paint = now - self.t_created
                self.first_paint_cpu = time.process_time() - self.cpu_created
            if shown >= self.expect_rows and self.expect_rows and self.all_loaded is None:
                self.all_loaded = now - self.t_created
                self.all_loaded_cpu = time.process_time() - self.cpu_created
                self.repaints_to_load = self.repaints
        cpu = time.process_time()
        if self.applied:
            for batch in self.applied:
                self.change_latency.extend(now - t for t, _ in batch)
                self.change_latency_cpu.extend(cpu - c for _, c in batch)
            self.applied = []
        if self.key_probe is not None:
            (started, started_cpu), predicate, kind = self.key_probe
            if predicate():
                self.key_latency[kind].append(now - started)
                self.key_latency_cpu[kind].append(cpu - started_cpu)
                self.key_probe = None

    def note_drain(self) -> None:
        # the changes put so far are now in the app's hands
        if self.put_times:
            self.drained.append(list(self.put_times.values()))
            self.put_times = {}

    def note_repaint(self) -> None:
        # a repaint with nothing left to apply shows every drained change on the next update
        if not self.loading and self.drained:
            self.applied.extend(self.drained)
            self.drained = []


def templates() -> dict[tuple[str, int], bytes]:
    marker = "f" * 32
    out = {}
    for status in set(STATUSES):
        for progress in range(0, 100, 5):
            raw = status_json(marker, status=status, progress=progress / 100, hostname="HOSTNAME")
            out[(status, progress)] = raw
    return out


def make_app(n: int) -> BenchApp:
    fleet = sample_updates(n)  # what etcd and the server would deliver; built before the clock starts
    app = BenchApp(FleetModel(), watch_tty=False)
    app.expect_rows = n
    app.t_created = time.monotonic()
    app.cpu_created = time.process_time()
    for update in fleet:
        app.buffer.put(update)
    return app


async def scenario_paint(n: int) -> dict[str, Any]:
    app = make_app(n)
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.monotonic() + 120
        while n and (app.first_paint is None or app.all_loaded is None) and time.monotonic() < deadline:
            await pilot.pause(0.01)
        if n == 0:
            while app.repaints == 0:
                await pilot.pause(0.01)
            app.first_paint = time.monotonic() - app.t_created
    return {
        "nodes": n,
        "first_paint_s": app.first_paint,
        "first_paint_cpu_s": app.first_paint_cpu,
        "all_loaded_s": app.all_loaded,
        "all_loaded_cpu_s": app.all_loaded_cpu,
        "repaints_to_load": app.repaints_to_load,
        "rss_mb": psutil.Process().memory_info().rss / 2**20,
    }


async def scenario_load(n: int, rate: int, duration: float) -> dict[str, Any]:
    app = make_app(n)
    proc = psutil.Process()
    tpl = templates()
    keys = list(tpl)
    ids = [machine_id(i) for i in range(n)]
    rng = random.Random(1)
    peak_rss = 0.0
    async with app.run_test(size=SIZE) as pilot:
        while app.all_loaded is None:
            await pilot.pause(0.01)
        first_paint = app.first_paint
        await pilot.pause(0.5)
        app.change_latency.clear()
        app.change_latency_cpu.clear()
        table = app.main_screen.table
        cpu0 = sum(proc.cpu_times()[:2])
        t0 = time.monotonic()
        sent = 0
        next_key = t0 + 0.3
        key_n = 0
        filter_text = "node-00"
        filter_pos = 0
        filter_open = False
        while True:
            now = time.monotonic()
            if now - t0 >= duration:
                break
            due = int((now - t0) * rate) - sent
            for _ in range(due):
                mid = ids[rng.randrange(n)]
                raw = tpl[keys[rng.randrange(len(keys))]].replace(b"f" * 32, mid.encode())
                raw = raw.replace(b"HOSTNAME", f"node-{int(mid[8:16], 16):04d}".encode())
                t = time.monotonic()
                app.put_times.setdefault(mid, (t, time.process_time()))
                app.buffer.put(u.NodeStatus(mid, STATUS_KEY.format(mid), raw))
                sent += 1
            if now >= next_key and app.key_probe is None:
                next_key = now + 0.25
                key_n += 1
                if (key_n // 12) % 2 == 0:  # a run of cursor moves, then a run of filter edits
                    if filter_open:
                        app.main_screen.action_back()
                        app.main_screen.action_focus_table()
                        filter_open = False
                        await asyncio.sleep(0.05)
                    key = "down" if (key_n // 24) % 2 == 0 else "up"
                    target = table.cursor_index + (1 if key == "down" else -1)
                    target = max(0, min(target, len(table.rows) - 1))
                    event = events.Key(key, None)
                    app.key_probe = (
                        (time.monotonic(), time.process_time()),
                        lambda target=target: table.cursor_index == target,
                        "cursor",
                    )
                    app.post_message(event)
                else:  # filter edit
                    if not filter_open:
                        app.main_screen.action_filter()
                        filter_open = True
                        filter_pos = 0
                        await asyncio.sleep(0.05)
                    # type the filter a letter at a time, then take it back with backspace
                    step = filter_pos % (2 * len(filter_text))
                    filter_pos += 1
                    if step < len(filter_text):
                        char = filter_text[step]
                        key, expect = (char if char.isalnum() else "minus"), filter_text[: step + 1]
                    else:
                        key, char = "backspace", None
                        expect = filter_text[: 2 * len(filter_text) - step - 1]
                    app.key_probe = (
                        (time.monotonic(), time.process_time()),
                        lambda expect=expect: app.query_text == expect.strip(),
                        "filter",
                    )
                    app.post_message(events.Key(key, char))
            peak_rss = max(peak_rss, proc.memory_info().rss)
            await asyncio.sleep(0.005)
        wall = time.monotonic() - t0
        cpu = sum(proc.cpu_times()[:2]) - cpu0
        await pilot.pause(0.5)
    return {
        "nodes": n,
        "rate": rate,
        "duration_s": wall,
        "changes_sent": sent,
        "first_paint_s": first_paint,
        "change_to_screen_ms": pct(app.change_latency),
        "key_cursor_ms": pct(app.key_latency["cursor"]),
        "key_filter_ms": pct(app.key_latency["filter"]),
        "cpu_clock": {
            "change_to_screen_ms": pct(app.change_latency_cpu),
            "key_cursor_ms": pct(app.key_latency_cpu["cursor"]),
            "key_filter_ms": pct(app.key_latency_cpu["filter"]),
        },
        "cpu_cores": cpu / wall,
        "peak_rss_mb": peak_rss / 2**20,
        "repaints_per_s": app.repaints / wall,
    }


async def scenario_datatable(n: int) -> dict[str, Any]:
    """Baseline: the same rows in Textual's DataTable."""
    from textual.app import ComposeResult
    from textual.widgets import DataTable

    from widgets.node_columns import COLUMNS

    model = FleetModel()
    model.apply_many(sample_updates(n))
    rows = model.filter_rows("", "machine")

    class TableApp(DisplayHookApp):
        first_paint: float | None = None

        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            for column in COLUMNS:
                table.add_column(column.title, width=column.width, key=column.key)
            table.add_rows([[c.text(r) for c in COLUMNS] for r in rows])

        def on_display(self) -> None:
            if self.first_paint is None and self.query_one(DataTable).row_count:
                self.first_paint = time.monotonic() - t0

    t0 = time.monotonic()
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        while app.first_paint is None and time.monotonic() - t0 < 120:
            await pilot.pause(0.01)
    return {"nodes": n, "first_paint_s": app.first_paint}


def pct(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "n": len(values),
        "p50": round(statistics.median(ordered) * 1000, 1),
        "p99": round(p99 * 1000, 1),
        "max": round(ordered[-1] * 1000, 1),
    }


def run_child(args: list[str], tree: Path = ROOT) -> dict[str, Any]:
    """A scenario in a fresh process, run by `tree`'s copy of this bench (another checkout: the
    code before a change, measured in the same run)."""
    cmd = [sys.executable, str(tree / "bench" / "dashboard.py"), "--child", *args]
    where = "" if tree == ROOT else f" (in {tree})"
    print(f"  running: {' '.join(args)}{where} ...", file=sys.stderr, flush=True)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, cwd=tree)
    if out.returncode != 0:
        raise SystemExit(f"scenario {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_runs(args: list[str], repeat: int, trees: list[Path]) -> list[dict[str, Any]]:
    """`repeat` runs of a paint scenario in each tree, interleaved (a busy spell of the shared
    machine hits both alike), each in a fresh process: per tree, the median of every number, and
    each run's load-to-screen time (`runs_all_loaded_s`) to show the spread."""
    runs: list[list[dict[str, Any]]] = [[] for _ in trees]
    for _ in range(repeat):
        for tree, done in zip(trees, runs, strict=True):
            done.append(run_child(args, tree))
    return [_medians(done) for done in runs]


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = dict(runs[0])
    for name, value in runs[0].items():
        if isinstance(value, float):
            values = [r[name] for r in runs if r[name] is not None]
            out[name] = statistics.median(values) if values else None
    out["runs"] = len(runs)
    out["runs_all_loaded_s"] = [r["all_loaded_s"] for r in runs]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--wire-duration", type=float, default=20.0, help="seconds per pty run; 0 skips")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each paint scenario (median)")
    parser.add_argument(
        "--before",
        type=Path,
        help="another checkout (e.g. `git archive main | tar -x -C DIR`): its paint and load scenarios "
        "run in the same session, interleaved with these, for a before/after",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "dashboard.json"))
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "tty-full":
            return terminal_bytes.run_full_repaint_app(rest)
        if kind == "paint":
            result = asyncio.run(scenario_paint(int(rest[0])))
        elif kind == "load":
            result = asyncio.run(scenario_load(int(rest[0]), int(rest[1]), float(rest[2])))
        else:
            result = asyncio.run(scenario_datatable(int(rest[0])))
        print(json.dumps(result))
        return 0

    print(
        f"dashboard benchmark: {args.nodes} nodes, {args.rate} changes/s for {args.duration:.0f}s",
        file=sys.stderr,
    )
    trees = [ROOT] if args.before is None else [ROOT, args.before.resolve()]
    paint = median_runs(["paint", str(args.nodes)], args.repeat, trees)
    paint_big = median_runs(["paint", str(args.big)], args.repeat, trees)
    load = [run_child(["load", str(args.nodes), str(args.rate), str(args.duration)], t) for t in trees]
    results: dict[str, Any] = {"paint": paint[0], "paint_big": paint_big[0], "load": load[0]}
    if args.before is not None:
        results["before"] = {
            "tree": str(trees[1]),
            "paint": paint[1],
            "paint_big": paint_big[1],
            "load": load[1],
        }
    if not args.no_baseline:
        results["datatable_baseline"] = run_child(["datatable", str(args.nodes)])
    if args.wire_duration > 0:
        results["terminal_bytes"] = terminal_bytes.measure(
            args.nodes, args.rate, args.wire_duration, [(80, 24), (160, 48)]
        )
    load = results["load"]
    targets = [
        (f"first paint, {args.nodes} nodes", results["paint"]["first_paint_s"], 1.0, "s"),
        (f"first paint, {args.big} nodes", results["paint_big"]["first_paint_s"], 5.0, "s"),
        ("change to screen p99", load["change_to_screen_ms"]["p99"], 300.0, "ms"),
        ("  (CPU clock: own time only)", load["cpu_clock"]["change_to_screen_ms"]["p99"], 300.0, "ms"),
        ("keypress (cursor) p99", load["key_cursor_ms"]["p99"], 50.0, "ms"),
        ("  (CPU clock: own time only)", load["cpu_clock"]["key_cursor_ms"]["p99"], 50.0, "ms"),
        ("keypress (filter) p99", load["key_filter_ms"]["p99"], 50.0, "ms"),
        ("  (CPU clock: own time only)", load["cpu_clock"]["key_filter_ms"]["p99"], 50.0, "ms"),
        ("app CPU (cores)", load["cpu_cores"], 1.0, ""),
        ("peak memory", load["peak_rss_mb"], 300.0, "MB"),
        (f"all loaded and on screen, {args.big} nodes", results["paint_big"]["all_loaded_s"], 2.0, "s"),
    ]
    for pair in results.get("terminal_bytes", {}).get("pairs", []):
        targets.append((f"terminal bytes/s {pair['size']} / full repaint", pair["ratio"], 0.25, ""))
    rows = []
    for name, value, limit, unit in targets:
        ok = value is not None and value < limit
        rows.append({"metric": name, "value": value, "target": limit, "unit": unit, "ok": ok})
    if "datatable_baseline" in results and results["datatable_baseline"]["first_paint_s"]:
        base = results["datatable_baseline"]["first_paint_s"]
        mine = results["paint"]["first_paint_s"]
        results["datatable_ratio"] = round(base / mine, 1) if mine else None
    results["targets"] = rows
    results["machine"] = {
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "nice": os.nice(0),
        "note": "2 cores shared with other engineers' test runs; see load average",
    }
    results["command"] = " ".join(["bench/dashboard.py", *sys.argv[1:]])
    results["load_fed"] = "model directly, through the app's UpdateBuffer (no etcd in the loop)"
    width = max(len(r["metric"]) for r in rows)
    print(f"{'metric':<{width}}  {'value':>10}  {'target':>8}  ok")
    for r in rows:
        value = "-" if r["value"] is None else f"{r['value']:.3g}{r['unit']}"
        print(
            f"{r['metric']:<{width}}  {value:>10}  {'<' + format(r['target'], 'g') + r['unit']:>8}  {'yes' if r['ok'] else 'NO'}"
        )
    print(
        f"load: {load['changes_sent']} changes in {load['duration_s']:.1f}s, "
        f"{load['repaints_per_s']:.1f} repaints/s; change->screen p50 {load['change_to_screen_ms']['p50']} ms; "
        f"cursor p50 {load['key_cursor_ms']['p50']} ms (n={load['key_cursor_ms']['n']}); "
        f"filter p50 {load['key_filter_ms']['p50']} ms (n={load['key_filter_ms']['n']})"
    )
    print(
        f"all nodes loaded and on screen: {results['paint']['all_loaded_s']:.2f}s ({args.nodes}), "
        f"{results['paint_big']['all_loaded_s']:.2f}s ({args.big}); "
        f"machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, nice {os.nice(0)}"
    )
    if "before" in results:
        print_before_after(results)
    if "terminal_bytes" in results:
        terminal_bytes.print_pairs(results["terminal_bytes"])
    if "datatable_baseline" in results:
        print(
            f"baseline DataTable first paint, {args.nodes} rows: {results['datatable_baseline']['first_paint_s']:.2f}s "
            f"({results.get('datatable_ratio')}x the line-API table)"
        )
    write_results(args.out, results)
    return 0


def print_before_after(results: dict[str, Any]) -> None:
    before = results["before"]
    pairs = [
        ("first paint", ("paint", "first_paint_s")),
        ("first paint, big", ("paint_big", "first_paint_s")),
        ("all loaded and on screen, big", ("paint_big", "all_loaded_s")),
        ("  (CPU clock)", ("paint_big", "all_loaded_cpu_s")),
    ]
    print(f"before ({before['tree']}) / now, medians:")
    for name, (scenario, key) in pairs:
        old, new = before[scenario].get(key), results[scenario].get(key)
        if old and new:
            print(f"  {name:<30} {old:8.2f}s {new:8.2f}s  ({new / old:.2f}x)")
    for key in ("key_cursor_ms", "key_filter_ms", "change_to_screen_ms"):
        old, new = before["load"][key], results["load"][key]
        print(f"  {key:<30} p50 {old['p50']} -> {new['p50']} ms, p99 {old['p99']} -> {new['p99']} ms")


if __name__ == "__main__":
    raise SystemExit(main())
