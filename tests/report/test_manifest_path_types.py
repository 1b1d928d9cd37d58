"""A report manifest whose file path is a list or an object is refused with its field named (``pull`` exit 1,
``verify_report`` a problem); before, ``verify_report`` raised TypeError (unhashable) and pull stopped with a
traceback."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tests.export.test_storage_misuse import report  # noqa: F401  (fixture)
from tracebridge.cli import app
from tracebridge.report import verify_report


@pytest.mark.parametrize("path", [["results.json"], {"name": "results.json"}])
def test_a_path_that_is_no_string_is_a_problem_not_a_traceback(
    path: object,
    report: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    man = orjson.loads((report / "manifest.json").read_bytes())
    man["files"][0]["path"] = path
    (report / "manifest.json").write_bytes(orjson.dumps(man))
    assert any(
        p.endswith(f"manifest.json:files[0].path: {path!r} is not a relative POSIX path")
        for p in verify_report(report)
    )
    res = CliRunner().invoke(app, ["pull", str(report), "--out", str(tmp_path / "p"), "--json"])
    assert res.exit_code == 1, res.output
    assert "files[0].path" in json.loads(res.stdout)["error"]
