"""``import openclaw`` on a full disk (a small tmpfs mounted by the test; root only): exit 1 with one
error naming the file that could not be written, no half-written run, and after space is freed the next
import ends with the runs one uninterrupted import writes. Before, a traceback (two chained OSErrors
"[Errno 28] No space left on device", naming no file)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.importers.test_openclaw_parallel import all_bytes, make_sources
from tracebridge.cli import app
from tracebridge.importers.openclaw import import_openclaw
from tracebridge.testing.procs import small_tmpfs


@pytest.fixture
def small_disk() -> Iterator[Path]:
    with small_tmpfs("256k") as mnt:
        yield mnt


def test_an_import_on_a_full_disk_names_the_file_and_the_next_one_recovers(small_disk, tmp_path):
    src, out = make_sources(tmp_path / "src", 60), small_disk / "traces"
    r = CliRunner().invoke(app, ["import", "openclaw", str(src), "--out", str(out), "--json"])
    assert r.exit_code == 1, r.output
    err = json.loads(r.stdout)["error"]
    assert (
        err.startswith("import stopped: [Errno 28] No space left on device: ") and f"'{out}/" in err
    ), err
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]  # no half-written run left
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    r = CliRunner().invoke(app, ["import", "openclaw", str(src), "--out", str(out), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["reconciles"], r.output
    one = tmp_path / "one"
    import_openclaw([src], one)
    runs = {k: v for k, v in all_bytes(out).items() if not k.startswith(".import")}
    assert runs == {k: v for k, v in all_bytes(one).items() if not k.startswith(".import")}
