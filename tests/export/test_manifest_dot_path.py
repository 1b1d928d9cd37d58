"""A manifest whose file path is ``.`` or ``./`` (the folder itself) is refused with its field named, exit 1
on ``fetch`` and ``pull``; before, both stopped with an IndexError traceback."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tests.export.test_storage_misuse import report  # noqa: F401  (fixture)
from tracebridge.cli import app
from tracebridge.export.bundle import BundleError, safe_relpath
from tracebridge.export.pipeline import export_traces


def _point_first_file_at(folder: Path, path: str) -> None:
    man = orjson.loads((folder / "manifest.json").read_bytes())
    man["files"][0]["path"] = path
    (folder / "manifest.json").write_bytes(orjson.dumps(man))


@pytest.mark.parametrize("path", [".", "./"])
def test_the_folder_itself_is_no_file_path(
    path: str,
    mixed_traces: Path,
    report: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    with pytest.raises(BundleError, match="names the folder itself"):
        safe_relpath(path)
    bundle = export_traces(mixed_traces, tmp_path / "bundles").path
    _point_first_file_at(bundle, path)
    _point_first_file_at(report, path)
    for args in (
        ["fetch", str(bundle), "--out", str(tmp_path / "f")],
        ["pull", str(report), "--out", str(tmp_path / "p")],
    ):
        res = CliRunner().invoke(app, [*args, "--json"])
        assert res.exit_code == 1, res.output
        doc = json.loads(res.stdout)
        assert f"manifest.json:files[0].path: {path!r} names the folder itself" in doc["error"], doc
    assert not (tmp_path / "f").exists() or not any((tmp_path / "f").iterdir())
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())
