"""``fetch`` of a prefix whose ``LATEST`` names a bundle that has no manifest there (removed, or a copy cut
short) says so, naming the pointer and the missing manifest. Before, it said "no manifest.json, no LATEST",
though the pointer was there."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracebridge.export.pipeline import export_traces
from tracebridge.export.push import push_bundle
from tracebridge.export.storage import StorageError, fetch_bundle


def test_a_latest_pointer_to_a_bundle_without_manifest_is_named(
    mixed_traces: Path, tmp_path: Path
) -> None:
    bundle = export_traces(mixed_traces, tmp_path / "bundles")
    store = tmp_path / "store"
    push_bundle(bundle.path, str(store))
    bid = bundle.manifest.bundle_id
    (store / bid / "manifest.json").unlink()
    for uri in (str(store), f"{store}/"):
        with pytest.raises(StorageError) as err:
            fetch_bundle(uri, tmp_path / "out")
        assert str(err.value).startswith(
            f"{store}/LATEST: names bundle {bid}, but {store}/{bid}/manifest.json is not there"
        ), str(err.value)
    assert not (tmp_path / "out" / bid).exists()
