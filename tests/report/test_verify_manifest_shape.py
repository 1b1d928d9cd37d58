"""``report --verify`` on a manifest that is not a report manifest says what is wrong with it. Before,
a manifest without ``files`` said ``not a report manifest ('files')`` and a JSON list said
``list indices must be integers or slices, not str``."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers the command modules
from tracebridge.cli.app import app


@pytest.mark.parametrize("text, said", [("{", "not JSON: "), ("[1]", "no JSON object"),
                                        ('{"report_id": "x"}', "files: missing"),
                                        ('{"files": [1]}', "files: not a list of {path, sha256} objects")])
def test_a_manifest_of_another_shape_is_named(tmp_path, text, said):
    (tmp_path / "manifest.json").write_text(text)
    res = CliRunner().invoke(app, ["report", "--verify", str(tmp_path), "--json"])
    assert res.exit_code == 1, res.output
    (problem,) = json.loads(res.stdout)["problems"]
    assert problem.startswith(f"{tmp_path / 'manifest.json'}: not a report manifest ({said}"), problem
