"""``push B B`` (a destination inside the bundle folder): exit 2 before anything is written. Before, the push
said "published" and copied the bundle into a folder of itself, whose files are unlisted data of the bundle: it
no longer verified, so ``train`` and the next ``push`` refused it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.export.bundle import verify_bundle
from tracebridge.export.pipeline import export_traces


@pytest.mark.parametrize("where", [".", "published"])
def test_a_push_into_the_bundle_folder_is_refused(
    where: str, mixed_traces: Path, tmp_path: Path
) -> None:
    bundle = export_traces(mixed_traces, tmp_path / "bundles").path
    dest = bundle / where
    res = CliRunner().invoke(app, ["push", str(bundle), str(dest), "--json"])
    assert res.exit_code == 2, res.output
    assert "inside the bundle folder" in json.loads(res.stdout)["error"]
    verify_bundle(bundle)  # still whole: nothing was copied into it
    assert not (bundle / "published").exists() and not (bundle / "LATEST").exists()


def test_the_export_out_folder_takes_the_push(mixed_traces: Path, tmp_path: Path) -> None:
    bundle = export_traces(mixed_traces, tmp_path / "bundles").path
    res = CliRunner().invoke(app, ["push", str(bundle), str(tmp_path / "bundles"), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["status"] == "exists", (
        res.output
    )  # it is there already
    verify_bundle(bundle)
