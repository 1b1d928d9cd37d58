"""An object-store URI with an empty, ``.`` or ``..`` folder (``s3://b//bundles``, from ``"s3://b/" + "/bundles"``)
is refused, saying the URI meant: its keys are kept as written, so the push went to keys ``/bundles/...`` that
``s3://b/bundles`` (a trainer's fetch, ``aws s3 ls``) never finds, and ``a/../b`` was a folder named ``..``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.export.pipeline import export_traces
from tracebridge.export.storage import uri_problem


@pytest.mark.parametrize(
    "uri, meant",
    [
        ("s3://b//bundles", "s3://b/bundles"),
        ("s3://b/a/../x/", "s3://b/x"),
        ("gs://b/./x", "gs://b/x"),
        ("s3://b/x//y//", "s3://b/x/y"),
    ],
)
def test_empty_dot_and_dotdot_folders_in_object_keys_are_refused(uri: str, meant: str) -> None:
    problem = uri_problem(uri)
    assert problem is not None and problem.endswith(f"write {meant}"), problem


@pytest.mark.parametrize(
    "uri", ["s3://b", "s3://b/", "s3://b/x/", "s3://b/pre fix/ü", "/tmp/a//b", "file:///tmp/a/../b"]
)
def test_other_uris_are_taken(uri: str) -> None:
    assert uri_problem(uri) is None


def test_push_fetch_and_pull_exit_2(mixed_traces: Path, tmp_path: Path) -> None:
    bundle = export_traces(mixed_traces, tmp_path / "bundles")
    for args in (
        ["push", str(bundle.path), "s3://b//bundles"],
        ["fetch", "s3://b//bundles", "--out", str(tmp_path / "f")],
        ["pull", "s3://b//reports/sw-1", "--out", str(tmp_path / "p")],
    ):
        res = CliRunner().invoke(app, [*args, "--json"])
        assert res.exit_code == 2, (args, res.output)
        assert "write s3://b/" in json.loads(res.stdout)["error"], res.output
