"""Fixtures of the importer tests: the OpenClaw fixture home (tests/data/openclaw/home)."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
from pathlib import Path
from typing import Any

import pytest

HOME = Path(__file__).resolve().parents[1] / "data" / "openclaw" / "home"
SESSIONS = HOME / ".openclaw" / "agents" / "main" / "sessions"
MAIN = SESSIONS / "5f0c2d1e-6b7a-4c3d-9e8f-0a1b2c3d4e5f.jsonl"


@pytest.fixture
def openclaw_home(tmp_path: Path) -> Path:
    """A writable copy of the fixture home."""
    dst = tmp_path / "home"
    shutil.copytree(HOME, dst)
    return dst


class _LazyModule:
    """A module imported the first time a test reads one of its names (``agentlightning`` and
    ``litellm`` cost seconds of CPU each, which a module-level import charges to every collection)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):  # pytest probes module globals for marker and fixture attributes
            raise AttributeError(attr)
        return getattr(importlib.import_module(self._name), attr)


def lazy_importorskip(name: str) -> Any:
    """At module level: skip the whole test module when ``name`` is not installed (found without
    importing it), else return a stand-in that imports it on first use. The stand-in only reads:
    to set or monkeypatch a name, use the module itself (``monkeypatch.setattr("pkg.Name", ...)``)."""
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed", allow_module_level=True)
    return _LazyModule(name)


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every run file under a trace root (import state excluded), by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".import" not in p.parts}


def feed_rows(mapper, rows: list[dict]) -> list[dict]:
    """Every event a ``SessionMapper`` makes of ``rows`` (line numbers from 1), each schema-validated."""
    from tracebridge.schema.events import validate_event

    out = []
    for i, r in enumerate(rows, 1):
        out += mapper.feed(r, i)
    for ev in out:
        validate_event(ev)
    return out
