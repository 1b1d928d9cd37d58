"""The fixture home imports to exactly the committed bytes: every run file, the state file and the
quarantine (fixture paths written as ``<HOME>``), so a speed-up of the importer cannot change its
output unnoticed. After a deliberate change of the output, regenerate the digests with
``python -m tests.importers.test_openclaw_golden`` and review the diff of
``tests/data/openclaw/golden_import.json``.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import orjson

from tests.importers.conftest import HOME
from tracebridge.importers.openclaw import import_openclaw

GOLDEN = HOME.parent / "golden_import.json"


def digests(out: Path) -> dict[str, str]:
    """sha256 of every file the import wrote under ``out`` (the lock file excepted), by relative path."""
    home = str(HOME).encode()
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes().replace(home, b"<HOME>")).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file() and p.name != "openclaw.lock"}


def test_fixture_import_matches_the_golden_digests(tmp_path):
    out = tmp_path / "traces"
    import_openclaw([HOME], out)
    got, want = digests(out), orjson.loads(GOLDEN.read_bytes())
    assert sorted(got) == sorted(want)
    assert [k for k in want if got[k] != want[k]] == []


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        import_openclaw([HOME], Path(tmp) / "traces")
        GOLDEN.write_bytes(orjson.dumps(digests(Path(tmp) / "traces"), option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.write(f"wrote {GOLDEN}\n")
