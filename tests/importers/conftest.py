"""Fixtures of the importer tests: the OpenClaw fixture home (tests/data/openclaw/home)."""

from __future__ import annotations

import shutil
from pathlib import Path

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
