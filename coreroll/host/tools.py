"""Running a host tool (`cgpt`, `update_engine_client`, `systemctl`) with bounds: a timeout, capped
output, and every failure (missing, timed out, non-zero exit) as a `ToolError` naming the command.

Public API: `ToolError`, `async run_tool(argv, *, time_limit=10.0, limit=1 MiB) -> str` (stdout).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil

from coreroll.textsafe import visible

__all__ = ["ToolError", "run_tool"]

_OUTPUT_LIMIT = 1024 * 1024


class ToolError(RuntimeError):
    """A host tool is missing, failed or timed out; `str()` names the command and what happened."""


async def run_tool(argv: list[str], *, time_limit: float = 10.0, limit: int = _OUTPUT_LIMIT) -> str:
    command = " ".join(argv)
    if shutil.which(argv[0]) is None:
        raise ToolError(f"{argv[0]}: not found on PATH")
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise ToolError(f"{command}: cannot start: {exc}") from None
    try:
        async with asyncio.timeout(time_limit):
            out, err = await proc.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise ToolError(f"{command}: no answer within {time_limit:g}s") from None
    if len(out) > limit:
        raise ToolError(f"{command}: printed more than {limit} bytes")
    if proc.returncode != 0:
        tail = visible(err.decode("utf-8", "replace").strip()[-300:])
        raise ToolError(f"{command}: exit status {proc.returncode}" + (f": {tail}" if tail else ""))
    return out.decode("utf-8", "replace")
