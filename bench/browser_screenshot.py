"""A PNG of the dashboard in a browser over a LIVE system, written to screenshots/browser.png.

    .venv/bin/python bench/browser_screenshot.py [--out screenshots] [--nodes 24] [--time-factor 60]

Brings up the demo's system (`coreroll.demo.threaded.DemoThread`, scenario `rollout`: embedded
etcd, the update server, real node agents), serves the dashboard with `coreroll dash --serve` on
a free 127.0.0.1 port, opens it in Debian's headless chromium (tests/tui/browser.py), signs in
with the server's admin token through the page's form and saves the browser's screenshot once the
rollout is under way. Says what it waits for; exits 1 with the reason when something does not
show up in time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coreroll.demo.system import DemoOptions  # noqa: E402
from coreroll.demo.threaded import DemoThread  # noqa: E402
from tests.tui.browser import ServedDashboard, XtermPage, launch_chromium  # noqa: E402


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def shoot(etcd: str, server: str, token: str, nodes: int, path: Path) -> None:
    say("serving the dashboard (coreroll dash --serve 127.0.0.1:0) ...")
    served = ServedDashboard("--etcd", etcd, "--server", server, env={"COREROLL_TOKEN": token})
    try:
        with launch_chromium() as browser:
            tab = XtermPage(browser, served.url, size=(1440, 810))
            say(f"opened {served.url} in chromium; signing in with the admin token ...")
            tab.wait_text("Admin token")
            tab.type(token)
            tab.keys("Enter")
            tab.wait_text("[browser: admin]", absent=("Admin token",))
            say(f"waiting for {nodes} nodes and the rollout under way (up to 180 s) ...")
            tab.wait_text(f"nodes {nodes}", "etcd: ok", "server: ok", timeout=60)
            tab.wait_text("downloading", timeout=180)
            tab.screenshot(path)
            say(f"wrote {path}")
            tab.close()
    except AssertionError as exc:
        raise SystemExit(f"browser_screenshot: {exc}") from None
    finally:
        served.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "screenshots"))
    parser.add_argument("--nodes", type=int, default=24)
    parser.add_argument("--time-factor", type=float, default=60.0)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    demo = DemoThread(
        DemoOptions(nodes=args.nodes, time_factor=args.time_factor, scenario="rollout"), on_progress=say
    )
    say(f"starting the live system: etcd, server, {args.nodes} node agents (rollout scenario) ...")
    demo.start(run=True)
    try:
        system = demo.system
        shoot(system.etcd_endpoint, system.server_url, system.token, args.nodes, out / "browser.png")
    finally:
        say("stopping the live system ...")
        demo.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
