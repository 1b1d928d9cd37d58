"""``push`` of a bundle whose files change while it runs (after their sha256 was checked): nothing is
published, and the next push, of the files put back, publishes a copy that verifies, on a local path and
on a real S3 API (moto's server on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.export.conftest import s3_env, s3_server  # noqa: F401  (fixtures)
from tracebridge.export.bundle import BundleError
from tracebridge.export.pipeline import ExportResult, export_traces
from tracebridge.export.push import push_bundle
from tracebridge.export.storage import PushRefused, StorageError, fetch_bundle, open_fs


@pytest.fixture
def bundle(mixed_traces: Path, tmp_path: Path) -> ExportResult:
    return export_traces(mixed_traces, tmp_path / "bundles")


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_a_file_changed_while_the_push_runs_is_not_published(
    bundle: ExportResult, tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    uri = (
        (tmp_path / "store").as_uri()
        if kind == "file"
        else f"s3://{request.getfixturevalue('s3_env')}/b"
    )
    last = (
        bundle.path / bundle.manifest.files[-1].path
    )  # sent last: changed after the first file went
    original = last.read_bytes()
    edited = original.replace(b"a", b"b", 1)
    assert edited != original and len(edited) == len(
        original
    )  # same size: verify_remote=size cannot see it

    def edit_while_sending(done: int, total: int, what: str) -> None:
        if what == "MB sent" and last.read_bytes() == original:
            last.write_bytes(edited)

    with pytest.raises(PushRefused, match=rf"{last.name} changed while the push ran") as err:
        push_bundle(bundle.path, uri, progress=edit_while_sending)
    assert str(last) in str(err.value)
    with pytest.raises(
        StorageError, match="no published bundle"
    ):  # no manifest, no LATEST: nothing to trust
        fetch_bundle(uri, tmp_path / "none")
    fs, base = open_fs(uri)
    assert not fs.exists(
        f"{base}/{bundle.manifest.bundle_id}/{bundle.manifest.files[-1].path}"
    )  # sent, deleted
    last.write_bytes(original)
    assert push_bundle(bundle.path, uri)["status"] == "published"
    path, man = fetch_bundle(uri, tmp_path / "pulled")  # every sha256 checked
    assert man.bundle_id == bundle.manifest.bundle_id
    assert (path / bundle.manifest.files[-1].path).read_bytes() == original


def test_a_file_changed_during_a_repair_is_sent_again_by_the_next_push(
    bundle: ExportResult, tmp_path: Path
) -> None:
    uri = (tmp_path / "store").as_uri()
    push_bundle(bundle.path, uri)
    fs, base = open_fs(uri)
    rel = bundle.manifest.files[-1].path
    fs.rm_file(
        f"{base}/{bundle.manifest.bundle_id}/{rel}"
    )  # lost on the storage: the next push repairs it
    last = bundle.path / rel
    original = last.read_bytes()
    with pytest.raises(
        PushRefused, match="changed while the push ran"
    ):  # changed once it was sent again
        push_bundle(
            bundle.path,
            uri,
            progress=lambda d, t, what: (
                None if what != "MB sent" else last.write_bytes(original.replace(b"a", b"b", 1))
            ),
        )
    last.write_bytes(original)
    with pytest.raises(
        BundleError, match="missing from the store"
    ):  # the changed copy was not left there
        fetch_bundle(uri, tmp_path / "refused")
    res = push_bundle(bundle.path, uri)
    assert res["status"] == "repaired" and res["repaired"] == [{"path": rel, "problem": "missing"}]
    fetch_bundle(uri, tmp_path / "pulled")


def test_a_file_deleted_while_the_push_runs_is_named_not_blamed_on_the_storage(
    bundle: ExportResult, tmp_path: Path
) -> None:
    """Before: exit 2, "push to <storage> failed: No such file or directory: <the bundle's file>"."""
    from typer.testing import CliRunner

    from tracebridge.cli import app

    gone = bundle.path / bundle.manifest.files[-1].path
    store = tmp_path / "store"
    with pytest.raises(PushRefused, match=rf"{gone.name} changed while the push ran"):
        push_bundle(
            bundle.path,
            str(store),
            progress=lambda d, t, what: (
                gone.unlink() if what == "rows checked" and gone.exists() else None
            ),
        )
    assert (
        not (store / bundle.manifest.bundle_id / "manifest.json").exists()
        and not (store / "LATEST").exists()
    )
    res = CliRunner().invoke(app, ["push", str(bundle.path), str(store), "--json"])
    assert res.exit_code == 1, res.output  # refused: it no longer verifies
