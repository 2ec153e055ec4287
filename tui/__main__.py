"""`python -m tui`: the dashboard, with the same flags as `coreroll dash`."""

from __future__ import annotations

import sys

from tui.run import main

if __name__ == "__main__":
    sys.exit(main())
