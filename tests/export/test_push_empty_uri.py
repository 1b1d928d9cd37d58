"""An empty storage URI (a script's unset variable: ``tracebridge push B "$STORE"``) is refused, exit 2,
naming what to give. Before, fsspec took '' as the current folder: ``push`` published the bundle and a
LATEST pointer into the cwd and said it went to ``/<bundle id>``; ``fetch ''`` said ": no published bundle"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.export.pipeline import export_traces


@pytest.mark.parametrize("uri", ["", "  "])
def test_push_and_fetch_refuse_an_empty_uri(uri: str, mixed_traces: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = export_traces(mixed_traces, tmp_path / "bundles").path
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    for args in (["push", str(bundle), uri], ["fetch", uri, "--out", str(tmp_path / "got")]):
        res = CliRunner().invoke(app, [*args, "--json"])
        assert res.exit_code == 2, res.output
        assert json.loads(res.stdout)["error"] == f"{uri!r}: no storage URI given; write s3://bucket/prefix, " \
            "gs://bucket/prefix, file:///absolute/path or a local folder (./bundles)"
    assert list(work.iterdir()) == [] and not (tmp_path / "got").exists()  # nothing written anywhere
