"""Counters for docs/reliability.md: faults injected, inputs fuzzed, invariants checked and violated.

Tests call `record(name, n=1)` (faults injected, inputs tried, ...) and `check(name, problems)`
(an invariant checked over a run: the list of violations, empty when it held). At the end of the
session `flush(suite)` merges the counts into bench/results/reliability.json under the suite's
name, so running tests/security alone keeps the numbers tests/faults wrote earlier.

File shape: {"updated_at": ISO, "suites": {suite: {"at": ISO, "counts": {name: int},
"invariants": {name: {"checked": int, "violations": int}}}}}.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "reliability.json"

_lock = threading.Lock()
_counts: dict[str, Counter[str]] = {}
_invariants: dict[str, dict[str, list[int]]] = {}
_written: set[str] = set()  # suites this process already wrote: later flushes add to them


def record(name: str, n: int = 1, suite: str = "faults") -> None:
    with _lock:
        _counts.setdefault(suite, Counter())[name] += n


def check(name: str, problems: list[str], suite: str = "faults") -> list[str]:
    """Count one check of invariant `name`; returns `problems` so a test can assert on it."""
    with _lock:
        entry = _invariants.setdefault(suite, {}).setdefault(name, [0, 0])
        entry[0] += 1
        entry[1] += len(problems)
    return problems


def outcome(report: Any) -> str:
    """The counter name for a pytest call report: tests_passed/failed/xfailed/xpassed."""
    if hasattr(report, "wasxfail"):
        return "tests_xpassed" if report.passed else "tests_xfailed"
    return "tests_passed" if report.passed else "tests_failed"


def flush() -> None:
    """Merge this session's counts into RESULTS (no-op when nothing was recorded)."""
    with _lock:
        suites = set(_counts) | set(_invariants)
        if not suites or os.environ.get("COREROLL_NO_RELIABILITY_JSON"):
            return
        try:
            doc = json.loads(RESULTS.read_text())
        except (OSError, ValueError):
            doc = {}
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        doc["updated_at"] = now
        all_suites = doc.setdefault("suites", {})
        for suite in sorted(suites):
            counts = Counter(_counts.get(suite, Counter()))
            invariants = {name: list(pair) for name, pair in _invariants.get(suite, {}).items()}
            if suite in _written and suite in all_suites:  # a second flush in one session adds up
                counts.update(all_suites[suite].get("counts", {}))
                for name, entry in all_suites[suite].get("invariants", {}).items():
                    pair = invariants.setdefault(name, [0, 0])
                    pair[0] += entry["checked"]
                    pair[1] += entry["violations"]
            all_suites[suite] = {
                "at": now,
                "counts": dict(sorted(counts.items())),
                "invariants": {
                    name: {"checked": c, "violations": v} for name, (c, v) in sorted(invariants.items())
                },
            }
            _written.add(suite)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        tmp = RESULTS.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        tmp.replace(RESULTS)
        _counts.clear()
        _invariants.clear()
