"""Writing a benchmark's results: every bench script ends with `write_results(path, data)`.

Public API: `write_results(path, data, *, file=None, lead="") -> Path`: `data` as indented JSON
(parent folders created), then the line `<lead>wrote <path>` on `file` (stdout by default).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO


def write_results(path: str | Path, data: Any, *, file: TextIO | None = None, lead: str = "") -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"{lead}wrote {out}", file=file)
    return out
