"""``push`` scans a bundle's files other than its JSONL rows for personal data and secrets too: the report,
the config and any file listed in a (resealed) manifest leave the host with the rows. Before, only
``*.jsonl`` files were scanned, so a secret in ``report.md`` or an added ``notes.txt`` was published."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.export.conftest import PII
from tracebridge.export.bundle import compute_bundle_id, sha256_file, verify_bundle
from tracebridge.export.pipeline import ExportResult, export_traces
from tracebridge.export.push import push_bundle
from tracebridge.export.storage import PushRefused

SECRET = f"contact {PII['email']} with key {PII['aws']}"


@pytest.fixture
def bundle(mixed_traces: Path, tmp_path: Path) -> ExportResult:
    return export_traces(mixed_traces, tmp_path / "bundles")


def _reseal(path: Path, added: str | None = None) -> None:
    """Every hash of the bundle recomputed after an edit: a manifest that verifies and lies."""
    man = orjson.loads((path / "manifest.json").read_bytes())
    if added:
        man["files"] = sorted([*man["files"], {"path": added}], key=lambda f: f["path"])
    for f in man["files"]:
        f.update(sha256=sha256_file(path / f["path"]), bytes=(path / f["path"]).stat().st_size)
    man["bundle_id"] = compute_bundle_id([f["sha256"] for f in man["files"]])
    (path / "manifest.json").write_bytes(orjson.dumps(man))


@pytest.mark.parametrize("name", ["report.md", "export_config.yaml", "notes.txt", "report.json"])
def test_a_secret_in_a_file_that_is_not_rows_is_not_pushed(
    bundle: ExportResult, tmp_path: Path, name: str
) -> None:
    path = bundle.path / name
    if (
        name == "report.json"
    ):  # JSON stays JSON (its redaction record must still read): the field is named
        doc = orjson.loads(path.read_bytes())
        doc["note"] = SECRET
        path.write_bytes(orjson.dumps(doc))
        where = "report.json:note"
    else:
        before = path.read_text().splitlines() if path.exists() else []
        path.write_text("\n".join([*before, SECRET]) + "\n")
        where = f"{name}:{len(before) + 1}"
    _reseal(bundle.path, None if name in {f.path for f in bundle.manifest.files} else name)
    verify_bundle(bundle.path)  # it verifies: only the scan can catch it
    store = tmp_path / "store"
    with pytest.raises(PushRefused) as err:
        push_bundle(bundle.path, store.as_uri())
    assert f"{where}: EMAIL found" in str(err.value) and f"{where}: AWS_KEY found" in str(
        err.value
    ), str(err.value)
    assert not store.exists()  # nothing landed in storage
