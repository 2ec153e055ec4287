"""Every dashboard test reads and writes its own config folder, never the developer's
~/.config/coreroll (keys.toml, filters.toml)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def own_config_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path_factory.mktemp("xdg-config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    monkeypatch.delenv("COREROLL_KEYMAP", raising=False)
    return folder / "coreroll"
