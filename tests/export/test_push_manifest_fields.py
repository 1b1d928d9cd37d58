"""``push`` of a bundle whose manifest (hand-edited: its fields are in no file hash) holds a ``source`` or
``data_governance`` that is no object: the governance claims nothing, so the push is refused as unredacted (exit
1, saying why), and a ``source`` of another shape is no "export that found nothing". Before, both stopped with
a traceback (AttributeError, TypeError, ValueError)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.export.pipeline import export_traces


def _edit(bundle: Path, key: str, value: object) -> None:
    man = orjson.loads((bundle / "manifest.json").read_bytes())
    man[key] = value
    (bundle / "manifest.json").write_bytes(orjson.dumps(man))


@pytest.mark.parametrize("value", ["clean", ["pii_scan", "clean"], 1, True])
def test_a_governance_that_is_no_object_is_refused(
    value: object, mixed_traces: Path, tmp_path: Path
) -> None:
    bundle = export_traces(mixed_traces, tmp_path / "bundles").path
    _edit(bundle, "data_governance", value)
    res = CliRunner().invoke(app, ["push", str(bundle), str(tmp_path / "store"), "--json"])
    assert res.exit_code == 1, res.output
    assert "pii_scan=None, passed_both=None" in json.loads(res.stdout)["error"]
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("value", ["x", [0], 0.5])
def test_a_source_that_is_no_object_is_no_failed_export(
    value: object, mixed_traces: Path, tmp_path: Path
) -> None:
    bundle = export_traces(mixed_traces, tmp_path / "bundles").path
    _edit(bundle, "source", value)
    res = CliRunner().invoke(app, ["push", str(bundle), str(tmp_path / "store"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["status"] == "published"
