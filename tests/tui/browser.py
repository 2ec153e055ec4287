"""Debian's chromium driven headless by Playwright (its driver only: never `playwright install`),
and `coreroll dash --serve` as a subprocess, for test_browser.py and bench/browser_screenshot.py.

The page draws the terminal with xterm.js on a canvas, so its text is not in the DOM. `XtermPage`
reads xterm's own screen buffer: a script run before the page's keeps the Terminal object when
textual-serve's page assigns it (`this.terminal = new Terminal(...)`), and `text()` reads the
visible lines from its buffer, exactly what the canvas shows.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",  # root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

KEEP_TERMINAL = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  set(value) {
    Object.defineProperty(this, "terminal", {value, writable: true, configurable: true, enumerable: true});
    if (value && value.buffer && value.buffer.active) window.__coreroll_xterm = value;
  },
});
"""

SCREEN_TEXT = """() => {
  const term = window.__coreroll_xterm;
  if (!term) return "";
  const buffer = term.buffer.active, lines = [];
  for (let y = 0; y < term.rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y);
    lines.push(line ? line.translateToString(true) : "");
  }
  return lines.join("\\n");
}"""


def chromium_path() -> str:
    path = shutil.which("chromium") or CHROMIUM
    if not Path(path).exists():
        raise RuntimeError("chromium is not installed (.ci/run installs it: apt-get install chromium)")
    return path


@contextmanager
def launch_chromium() -> Iterator[Any]:
    """One headless chromium (a fresh profile each time: Playwright makes it)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


class XtermPage:
    """A browser tab on the served dashboard: open it, read the screen, type."""

    def __init__(self, browser: Any, url: str, size: tuple[int, int] = (1280, 720)) -> None:
        self.context = browser.new_context(viewport={"width": size[0], "height": size[1]})
        self.page = self.context.new_page()
        self.page.add_init_script(KEEP_TERMINAL)
        self.page.goto(url)

    def text(self) -> str:
        return str(self.page.evaluate(SCREEN_TEXT))

    def wait_text(self, *texts: str, absent: tuple[str, ...] = (), timeout: float = 15.0) -> str:
        """Wait until every one of `texts` is on screen and none of `absent`; returns the screen."""
        condition = f"""([present, absent]) => {{
            const text = ({SCREEN_TEXT})();
            return present.every(t => text.includes(t)) && !absent.some(t => text.includes(t));
        }}"""
        try:
            self.page.wait_for_function(condition, arg=[list(texts), list(absent)], timeout=timeout * 1000)
        except Exception as exc:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {texts} on screen"
                + (f" and {absent} off it" if absent else "")
                + f" ({type(exc).__name__})\n--- screen ---\n{self.text()}"
            ) from None
        return self.text()

    def keys(self, *keys: str) -> None:
        """Press keys in the terminal (Playwright key names: "Escape", "Enter", "/", "u")."""
        self.page.focus(".xterm-helper-textarea")
        for key in keys:
            self.page.keyboard.press(key)

    def type(self, text: str) -> None:
        self.page.focus(".xterm-helper-textarea")
        self.page.keyboard.type(text)

    def screenshot(self, path: Path) -> None:
        self.page.screenshot(path=str(path))

    def close(self) -> None:
        self.context.close()


class ServedDashboard:
    """`coreroll dash --serve 127.0.0.1:0 ...` in a subprocess; `url` once it listens, `output`
    everything it printed (stdout and stderr)."""

    def __init__(self, *dash_args: str, env: dict[str, str] | None = None, timeout: float = 30.0) -> None:
        command = [sys.executable, "-m", "coreroll", "dash", "--serve", "127.0.0.1:0", *dash_args]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            text=True,
        )
        self.lines: list[str] = []
        self.url = ""
        self._listening = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._listening.wait(timeout) or not self.url:
            self.stop()
            raise RuntimeError(f"coreroll dash --serve did not say where it listens:\n{self.output}")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if not self.url and "serving the dashboard on " in line:
                self.url = line.split("serving the dashboard on ", 1)[1].split()[0]
                self._listening.set()
        self._listening.set()  # it ended

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def session_processes(self) -> list[Any]:
        import psutil

        return psutil.Process(self.process.pid).children(recursive=True)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, as an operator's Ctrl+C or systemd would; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait(5)
        self._reader.join(5)
        return status
