"""`coreroll demo`: the whole system on one machine, with the real parts, on a faster clock.

- `coreroll.demo.system`: `DemoSystem` (embedded etcd, the update server on SQLite with a fresh
  signing key, the first release on every channel, a simulated fleet) and `DemoOptions`, `Phase`.
- `coreroll.demo.scenarios`: the scripts (`rollout`, `bad-release`, `stuck-lock`) and their checks.
- `coreroll.demo.plan`: channels, lock groups (default max 2, `lb` 1, `db` 1), timings, and the
  node each scenario breaks.
- `coreroll.demo.locklog`: max lock holders per group and "no group over its max", from etcd's
  history (built on `coreroll.fleet.history`).
- `coreroll.demo.summary`: `summarize(demo) -> DemoSummary` (what `--headless` prints; `.ok`).
- `coreroll.demo.threaded`: `DemoThread`, the system on its own loop for the dashboard.
- `coreroll.demo.admin`: `ServerAdmin`, the server admin calls the script makes.
No Textual here: the dashboard on top is `tui.demo`.
"""
