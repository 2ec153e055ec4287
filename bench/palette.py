"""Command palette benchmark: "go to node", per keystroke, at 10,000 and 100,000 nodes.

    .venv/bin/python bench/palette.py [--sizes 10000,100000] [--no-app] [--out bench/results/palette.json]

Per fleet size:
- index: building the node index (tui.node_search.NodeIndex) as the palette does when it opens
  (in a thread there), milliseconds of CPU.
- search: every keystroke of typing, a letter at a time, a hostname (`worker-004711.dc2.example.com`),
  the same with gaps (`wk4711dc1`), the start of a machine id (16 hex digits) and something that
  matches nothing (`zz-nothing`): the 40 best nodes and their highlighted prompts, what the
  provider hands the palette. Milliseconds of CPU per keystroke, median and max.
- baseline (same run, same keystrokes, the first 4 of each query): Textual's own way
  (textual.command.SimpleProvider's): its fuzzy Matcher over every hostname and machine id and a
  highlighted prompt for every match. Ratio = baseline median / search median on those keystrokes.
- app: the dashboard running headless with the fleet loaded, its "go to node" palette open: from
  creating a key event to the end of the first screen update that shows that keystroke's best
  node first (`node-4711` typed a letter at a time), milliseconds, wall (median, max) and this
  process's CPU (median; the machine is shared, so wall time includes waiting for a core).

Prints a table and writes JSON (medians, maxima, ratios).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402
from textual.command import CommandList, CommandPalette  # noqa: E402
from textual.fuzzy import Matcher  # noqa: E402

from bench.results_file import write_results  # noqa: E402
from coreroll.watch.model import FleetModel  # noqa: E402
from tui.app import DashApp  # noqa: E402
from tui.node_search import NodeIndex  # noqa: E402
from tui.palette import highlighted, open_go_to_node  # noqa: E402
from tui.sample import machine_id, sample_updates  # noqa: E402
from tui.textual_compat import DisplayHookApp  # noqa: E402

LIMIT = 40  # the go-to-node palette's
BASELINE_KEYS = 4


def hostname(i: int) -> str:
    return f"worker-{i:06d}.dc{i % 3}.example.com"


def target(n: int) -> int:
    """The node searched for: number 4711, or the last of a smaller fleet."""
    return min(4711, n - 1)


def queries(n: int) -> dict[str, str]:
    i = target(n)
    return {
        "hostname": hostname(i),
        "gaps": f"wk{i}dc{i % 3}",
        "machine id": machine_id(i)[:16],
        "nothing": "zz-nothing",
    }


def cpu_ms(work: Callable[[], object]) -> float:
    start = time.process_time()
    work()
    return (time.process_time() - start) * 1000


def ours(index: NodeIndex, typed: str) -> None:
    for match in index.search(typed, LIMIT):
        highlighted(match.name, match.offsets, None)


def textuals(names: list[str], typed: str) -> None:
    matcher = Matcher(typed)
    for name in names:
        if matcher.match(name) > 0:
            matcher.highlight(name)


def measure_search(n: int) -> dict[str, Any]:
    nodes = [(machine_id(i), hostname(i)) for i in range(n)]
    names = [name for pair in nodes for name in pair]
    build = statistics.median(cpu_ms(lambda: NodeIndex(nodes)) for _ in range(3))
    index = NodeIndex(nodes)
    per_key: list[float] = []
    ours_first: list[float] = []
    baseline: list[float] = []
    for typed in queries(n).values():
        for end in range(1, len(typed) + 1):
            spent = cpu_ms(lambda typed=typed, end=end: ours(index, typed[:end]))
            per_key.append(spent)
            if end <= BASELINE_KEYS:
                ours_first.append(spent)
                baseline.append(cpu_ms(lambda typed=typed, end=end: textuals(names, typed[:end])))
    return {
        "nodes": n,
        "index_build_ms": round(build, 1),
        "keystrokes": len(per_key),
        "search_ms_median": round(statistics.median(per_key), 3),
        "search_ms_max": round(max(per_key), 2),
        "baseline_textual_ms_median": round(statistics.median(baseline), 1),
        "search_ms_median_same_keys": round(statistics.median(ours_first), 3),
        "baseline_vs_search": round(
            statistics.median(baseline) / max(statistics.median(ours_first), 1e-3), 1
        ),
    }


class PaletteBenchApp(DisplayHookApp, DashApp):
    """DashApp that notes when a screen update first shows what `probe` waits for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.probe: tuple[float, float, Callable[[], bool]] | None = None
        self.shown = asyncio.Event()
        self.latency: list[tuple[float, float]] = []  # (wall, CPU) seconds, key to screen

    def on_display(self) -> None:
        if self.probe is not None and self.probe[2]():
            started, started_cpu, _ = self.probe
            self.latency.append((time.monotonic() - started, time.process_time() - started_cpu))
            self.probe = None
            self.shown.set()


def first_hit(app: DashApp) -> Any:
    """The palette's first option, or None."""
    lists = app.screen.query(CommandList) if CommandPalette.is_open(app) else []
    for options in lists:
        return options.get_option_at_index(0) if options.option_count else None
    return None


async def shown(app: PaletteBenchApp, what: str, condition: Callable[[], bool]) -> None:
    """Wait (up to 2 minutes) for a screen update that shows `condition`."""
    app.shown.clear()
    app.probe = (time.monotonic(), time.process_time(), condition)
    app.refresh()  # a screen update, in case it already shows
    try:
        await asyncio.wait_for(app.shown.wait(), 120)
    except TimeoutError:
        raise SystemExit(f"palette bench: gave up waiting for {what}") from None


async def measure_app(n: int) -> dict[str, float]:
    app = PaletteBenchApp(FleetModel(), watch_tty=False)
    for update in sample_updates(n):
        app.buffer.put(update)
    typed = f"node-{target(n):04d}"
    index = NodeIndex((machine_id(i), f"node-{i:04d}") for i in range(n))
    async with app.run_test(size=(120, 40)):
        await shown(app, f"{n} rows", lambda: len(app.main_screen.table.rows) == n)
        open_go_to_node(app)
        await shown(app, "the go-to-node palette", lambda: first_hit(app) is not None)
        app.latency.clear()
        for end in range(1, len(typed) + 1):
            expected = index.search(typed[:end], LIMIT)[0].name
            before = first_hit(app)

            def up_to_date(before: Any = before, expected: str = expected) -> bool:
                hit = first_hit(app)
                return hit is not None and hit is not before and str(hit.hit.text) == expected

            app.shown.clear()
            app.probe = (time.monotonic(), time.process_time(), up_to_date)
            app.post_message(events.Key(typed[end - 1], typed[end - 1]))
            try:
                await asyncio.wait_for(app.shown.wait(), 120)
            except TimeoutError:
                raise SystemExit(
                    f"palette bench: {expected} never came first after {typed[:end]!r}"
                ) from None
    wall = [w * 1000 for w, _ in app.latency]
    cpu = [c * 1000 for _, c in app.latency]
    return {
        "app_keystroke_ms_median": round(statistics.median(wall), 1),
        "app_keystroke_ms_max": round(max(wall), 1),
        "app_keystroke_cpu_ms_median": round(statistics.median(cpu), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--no-app", action="store_true", help="skip the end-to-end keystrokes in the app")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "palette.json"))
    args = parser.parse_args()
    results = []
    for n in (int(size) for size in args.sizes.split(",")):
        print(
            f"measuring {n} nodes: index and search (baseline: Textual's matcher) ...",
            file=sys.stderr,
            flush=True,
        )
        result = measure_search(n)
        if not args.no_app:
            print(
                f"measuring {n} nodes: keystrokes in the running dashboard ...", file=sys.stderr, flush=True
            )
            result.update(asyncio.run(measure_app(n)))
        results.append(result)
    width = max(len(key) for result in results for key in result)
    print(f"{'(ms; CPU unless app_)':<{width}}  " + "  ".join(f"{r['nodes']:>10}" for r in results))
    for key in results[0]:
        if key != "nodes":
            print(f"{key:<{width}}  " + "  ".join(f"{r.get(key, '-')!s:>10}" for r in results))
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
