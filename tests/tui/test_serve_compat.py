"""textual-serve's private names that tui/serve.py relies on still exist, so an upgrade that renames
one fails here instead of leaving browser sessions running after the server stops."""

from __future__ import annotations

import inspect

import pytest

from tui.serve import HOOKED_SERVE


@pytest.mark.parametrize("cls", list(HOOKED_SERVE), ids=lambda c: c.__name__)
def test_textual_serve_still_has_the_names_serve_uses(cls: type) -> None:
    source = inspect.getsource(cls)
    missing = [
        n
        for n in HOOKED_SERVE[cls]
        if not hasattr(cls, n) and f"self.{n} " not in source and f"self.{n}:" not in source
    ]
    assert not missing, f"textual-serve's {cls.__name__} no longer has {missing}; update tui/serve.py"
