"""``push`` scans a bundle with every detector and the ``ip_allowlist``/``phone_regions`` its export ran with:
addresses the export was told to leave in (``redaction.ip_allowlist=[10.0.0.0/8]``, the config help's example)
are not found again. Before, such a bundle passed both export passes and push refused it: the rows held the
addresses as asked, and ``export_config.yaml`` the network itself."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

from tests.export.conftest import record_pii_run
from tracebridge.config import load_config
from tracebridge.export.bundle import compute_bundle_id, sha256_file
from tracebridge.export.config import ExportConfig
from tracebridge.export.pipeline import export_traces
from tracebridge.export.push import push_bundle
from tracebridge.export.storage import PushRefused


def _reseal(path: Path) -> None:
    man = orjson.loads((path / "manifest.json").read_bytes())
    for f in man["files"]:
        f.update(sha256=sha256_file(path / f["path"]), bytes=(path / f["path"]).stat().st_size)
    man["bundle_id"] = compute_bundle_id([f["sha256"] for f in man["files"]])
    (path / "manifest.json").write_bytes(orjson.dumps(man))


def test_an_allowlisted_network_left_in_by_the_export_is_pushed(tmp_path: Path) -> None:
    record_pii_run(tmp_path / "traces", text="restart the service on host 10.1.2.3 now")
    cfg = load_config(ExportConfig, None, ["redaction.ip_allowlist=[127.0.0.0/8,10.0.0.0/8]"])
    bundle = export_traces(tmp_path / "traces", tmp_path / "bundles", cfg)
    assert bundle.manifest.governance["passed_both"] is True
    assert (
        b"10.1.2.3" in (bundle.path / "views" / "planner_sft" / "train.jsonl").read_bytes()
    )  # left in, as asked
    assert push_bundle(bundle.path, str(tmp_path / "store"))["status"] == "published"


def test_the_bundle_config_cannot_switch_a_detector_off(tmp_path: Path) -> None:
    record_pii_run(tmp_path / "traces", text="restart the service on host 10.1.2.3 now")
    bundle = export_traces(tmp_path / "traces", tmp_path / "bundles")
    conf = yaml.safe_load((bundle.path / "export_config.yaml").read_text())
    conf["redaction"]["detectors"] = []  # a hand edit, resealed: push still runs every detector
    (bundle.path / "export_config.yaml").write_text(yaml.safe_dump(conf))
    view = bundle.path / "views" / "planner_sft" / "train.jsonl"
    row = orjson.loads(view.read_bytes().splitlines()[0])
    row["note"] = "mail jane.doe@example.org"
    view.write_bytes(view.read_bytes() + orjson.dumps(row) + b"\n")
    _reseal(bundle.path)
    with pytest.raises(PushRefused, match=r"planner_sft/train.jsonl:\d+:note: EMAIL found"):
        push_bundle(bundle.path, str(tmp_path / "store"))
