"""``push`` to a storage it cannot open (a mistyped URI, no credentials) says so before it scans the bundle's
rows: the scan takes ~33 s for a 3 GB bundle, and before, the error came after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracebridge.export.pipeline import export_traces
from tracebridge.export.push import push_bundle
from tracebridge.export.storage import StorageError


@pytest.mark.parametrize(
    "uri", ["s3:/bucket/bundles", "s3://b//bundles", "s3://key:secret@bucket/x"]
)
def test_a_storage_that_cannot_be_opened_is_refused_before_the_rows_are_scanned(
    mixed_traces: Path, tmp_path: Path, uri: str
) -> None:
    bundle = export_traces(mixed_traces, tmp_path / "bundles")
    seen: list[str] = []
    with pytest.raises(StorageError):
        push_bundle(bundle.path, uri, progress=lambda done, total, what: seen.append(what))
    assert "rows checked" not in seen
    push_bundle(
        bundle.path, str(tmp_path / "store"), progress=lambda done, total, what: seen.append(what)
    )
    assert (
        "rows checked" in seen
    )  # the scan reports its progress there: a push that opens its storage scans
