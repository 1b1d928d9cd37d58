"""``push`` of a bundle whose remote manifest was damaged. The bundle id covers the files only, so a fetch
cannot tell a manifest with an edited field (its governance, say): push compared the file list alone and
called such a copy ``exists``; a manifest that did not parse was ``published`` again (every file sent,
nothing named) instead of ``repaired``. Another export of the same input (a later ``created_at``) is no
damage."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tracebridge.export.pipeline import ExportResult, export_traces
from tracebridge.export.push import push_bundle
from tracebridge.export.storage import fetch_bundle


@pytest.fixture
def pushed(mixed_traces: Path, tmp_path: Path) -> tuple[ExportResult, str, Path]:
    res = export_traces(mixed_traces, tmp_path / "bundles")
    uri = (tmp_path / "store").as_uri()
    assert push_bundle(res.path, uri)["status"] == "published"
    return res, uri, tmp_path / "store" / res.manifest.bundle_id


def _edit(remote: Path, **fields: object) -> None:
    man = orjson.loads((remote / "manifest.json").read_bytes())
    man.update(fields)
    (remote / "manifest.json").write_bytes(orjson.dumps(man))


def test_an_edited_manifest_field_is_repaired(pushed: tuple[ExportResult, str, Path], tmp_path: Path) -> None:
    res, uri, remote = pushed
    gov = {**res.manifest.governance, "pii_scan": "clean", "passed_both": True, "note": "edited"}
    _edit(remote, data_governance=gov)
    fetch_bundle(uri, tmp_path / "blind")  # the fetch cannot tell: no file hash covers it
    out = push_bundle(res.path, uri)
    assert out["status"] == "repaired"
    assert out["repaired"] == [{"path": "manifest.json", "problem": "edited: data_governance"}]
    assert (remote / "manifest.json").read_bytes() == (res.path / "manifest.json").read_bytes()
    assert push_bundle(res.path, uri)["status"] == "exists"


def test_another_export_of_the_same_input_is_no_damage(pushed: tuple[ExportResult, str, Path]) -> None:
    res, uri, remote = pushed
    _edit(remote, created_at="2020-01-01T00:00:00.000Z", git_sha="0" * 40)
    before = (remote / "manifest.json").read_bytes()
    assert push_bundle(res.path, uri)["status"] == "exists"
    assert (remote / "manifest.json").read_bytes() == before  # kept as it is


def test_a_torn_manifest_is_repaired_with_the_files_it_hid(pushed: tuple[ExportResult, str, Path],
                                                           tmp_path: Path) -> None:
    res, uri, remote = pushed
    raw = (remote / "manifest.json").read_bytes()
    (remote / "manifest.json").write_bytes(raw[: len(raw) // 2])
    (remote / "runs.jsonl").unlink()
    kept = next(f.path for f in res.manifest.files if f.path.endswith(".jsonl") and f.path != "runs.jsonl")
    mtime = (remote / kept).stat().st_mtime_ns
    out = push_bundle(res.path, uri)
    assert out["status"] == "repaired"
    assert [r["path"] for r in out["repaired"]] == ["runs.jsonl", "manifest.json"]
    assert out["repaired"][1]["problem"].startswith("unreadable (")
    assert (remote / kept).stat().st_mtime_ns == mtime  # an intact file is not sent again
    assert fetch_bundle(uri, tmp_path / "pulled")[1].bundle_id == res.manifest.bundle_id


def test_a_push_cut_short_before_its_manifest_sends_only_what_is_missing(pushed: tuple[ExportResult, str, Path]
                                                                        ) -> None:
    res, uri, remote = pushed
    (remote / "manifest.json").unlink()
    (remote / "runs.jsonl").unlink()
    kept = next(f.path for f in res.manifest.files if f.path.endswith(".jsonl") and f.path != "runs.jsonl")
    mtime = (remote / kept).stat().st_mtime_ns
    out = push_bundle(res.path, uri)
    assert out["status"] == "published" and out["repaired"] == []
    assert (remote / kept).stat().st_mtime_ns == mtime and (remote / "runs.jsonl").is_file()
