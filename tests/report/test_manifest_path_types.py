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


@pytest.mark.parametrize("digest", [None, 5, "", "A" * 64, "ab"])
def test_a_file_digest_missing_or_mistyped_is_said_so_not_modified(
    digest: object,
    report: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A manifest whose file entry has no sha256 (or not a hex digest) said the file "was modified", sending the
    reader after a tampered file, not a broken manifest."""
    man = orjson.loads((report / "manifest.json").read_bytes())
    if digest is None:
        del man["files"][0]["sha256"]
    else:
        man["files"][0]["sha256"] = digest
    (report / "manifest.json").write_bytes(orjson.dumps(man))
    res = CliRunner().invoke(app, ["pull", str(report), "--out", str(tmp_path / "p"), "--json"])
    assert res.exit_code == 1, res.output
    problems = json.loads(res.stdout)["problems"]
    assert problems[0].endswith(f"manifest.json:files[0].sha256: {digest!r} is not a sha256 hex digest (64 of 0-9a-f), "
                                f"so {man['files'][0]['path']} cannot be checked"), problems
    assert not any("was modified" in p for p in problems), problems
