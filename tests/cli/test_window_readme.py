"""The README's ``tracebridge window`` example runs as written (with a bundle of ours in place of
``bundles/<bundle_id>``): it had no ``bundle=``, and its ``--dry-run`` exited 2 with "bundle='': set the
export bundle". A window checks its bundle before anything starts, a dry run too."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from tracebridge.cli import app

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "tests" / "data" / "train_views"


def _readme_window() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    cmd = re.search(r"`tracebridge (window configs/sweep/weekly\.yaml[^`]*)\[--dry-run\]`", text)
    assert cmd, "the README's window example is gone"
    return shlex.split(cmd.group(1))


def test_the_readme_window_example_plans(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    args = [a.replace("bundles/<bundle_id>", str(BUNDLE)) for a in _readme_window()]
    assert f"bundle={BUNDLE}" in args
    res = CliRunner().invoke(app, [*args, f"window.reports_dir={tmp_path}/reports", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert re.search(r"sweep weekly-\w+-\w+: \d+ trials", res.output) and "at most $50.00" in res.output
    res = CliRunner().invoke(app, [a for a in args if not a.startswith("bundle=")] + ["--dry-run"])
    assert res.exit_code == 2 and "bundle='': set the export bundle" in res.output  # the check, named
