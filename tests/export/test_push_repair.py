"""``push`` of a bundle already published: the remote copy is checked against the manifest, and what
is missing, cut short or (``verify_remote=sha256``) changed is sent again, on a local path and on a
real S3 API (moto's server on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tests.export.conftest import s3_env, s3_server  # noqa: F401  (fixtures)
from tracebridge.cli import app
from tracebridge.export.bundle import BundleError
from tracebridge.export.config import StorageConfig
from tracebridge.export.pipeline import ExportResult, export_traces
from tracebridge.export.push import push_bundle
from tracebridge.export.storage import fetch_bundle, open_fs


@pytest.fixture
def bundle(mixed_traces: Path, tmp_path: Path) -> ExportResult:
    return export_traces(mixed_traces, tmp_path / "bundles")


def _store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "file":
        return (tmp_path / "store").as_uri()
    return f"s3://{request.getfixturevalue('s3_env')}/bundles"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _remote(uri: str, bundle: ExportResult) -> tuple[object, str, list[str]]:
    fs, base = open_fs(uri)
    return fs, f"{base}/{bundle.manifest.bundle_id}", [f.path for f in bundle.manifest.files if f.path.endswith(".jsonl")]


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_push_sends_again_what_the_remote_copy_lost_or_has_cut_short(bundle: ExportResult, tmp_path: Path, kind: str,
                                                                    request: pytest.FixtureRequest) -> None:
    uri = _store(kind, tmp_path, request)
    assert push_bundle(bundle.path, uri)["status"] == "published"
    fs, d, views = _remote(uri, bundle)
    fs.rm(f"{d}/{views[0]}")  # lost: a lifecycle rule, a partial sync, a hand clean-up
    data = fs.cat_file(f"{d}/{views[1]}")
    fs.pipe_file(f"{d}/{views[1]}", data[: len(data) // 2])  # cut short: a copy that died half-way
    with pytest.raises(BundleError):  # readers refuse it: the damaged copy is no use to anyone
        fetch_bundle(uri, tmp_path / "refused")
    res = push_bundle(bundle.path, uri)
    assert res["status"] == "repaired" and res["verified"] == "size"
    assert {r["path"]: r["problem"] for r in res["repaired"]} == {
        views[0]: "missing", views[1]: f"{len(data) // 2} bytes, not {len(data)}"}
    path, man = fetch_bundle(uri, tmp_path / "pulled")
    assert man.bundle_id == bundle.manifest.bundle_id and _files(path) == _files(bundle.path)
    again = push_bundle(bundle.path, uri)
    assert again["status"] == "exists" and again["repaired"] == []


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_a_changed_byte_of_the_same_size_is_found_by_verify_remote_sha256(bundle: ExportResult, tmp_path: Path,
                                                                          kind: str, request: pytest.FixtureRequest) -> None:
    uri = _store(kind, tmp_path, request)
    push_bundle(bundle.path, uri)
    fs, d, views = _remote(uri, bundle)
    data = fs.cat_file(f"{d}/{views[0]}")
    fs.pipe_file(f"{d}/{views[0]}", data.replace(b'"split":', b'"splat":', 1))  # same size, other content
    assert push_bundle(bundle.path, uri)["status"] == "exists"  # the cheap check sees sizes only
    res = push_bundle(bundle.path, uri, StorageConfig(verify_remote="sha256"))
    assert res["status"] == "repaired" and res["repaired"] == [{"path": views[0], "problem": "sha256 differs"}]
    assert fs.cat_file(f"{d}/{views[0]}") == data
    assert _files(fetch_bundle(uri, tmp_path / "pulled")[0]) == _files(bundle.path)


def test_a_remote_manifest_of_the_same_bundle_with_another_file_list_is_published_again(bundle: ExportResult,
                                                                                       tmp_path: Path) -> None:
    uri = (tmp_path / "store").as_uri()
    push_bundle(bundle.path, uri)
    remote = tmp_path / "store" / bundle.manifest.bundle_id
    man = orjson.loads((remote / "manifest.json").read_bytes())
    dropped = man["files"].pop()["path"]  # an edited manifest: the id still names the bundle
    (remote / "manifest.json").write_bytes(orjson.dumps(man))
    (remote / dropped).unlink()
    res = push_bundle(bundle.path, uri)
    assert res["status"] == "repaired"
    assert [r["path"] for r in res["repaired"]] == [dropped, "manifest.json"]
    assert (remote / "manifest.json").read_bytes() == (bundle.path / "manifest.json").read_bytes()
    assert _files(fetch_bundle(uri, tmp_path / "pulled")[0]) == _files(bundle.path)


def test_cli_push_says_what_it_sent_again_and_refuses_an_unknown_check(bundle: ExportResult, tmp_path: Path) -> None:
    uri = (tmp_path / "store").as_uri()
    push_bundle(bundle.path, uri)
    view = next(f.path for f in bundle.manifest.files if f.path.endswith(".jsonl"))
    (tmp_path / "store" / bundle.manifest.bundle_id / view).write_bytes(b"")
    r = CliRunner().invoke(app, ["push", str(bundle.path), uri, "verify_remote=sha256"])
    assert r.exit_code == 0, r.output
    assert f"sent again: {view} (0 bytes, not " in r.stdout and r.stdout.splitlines()[-1].startswith("repaired: ")
    assert "checked by sha256" in r.stdout
    r = CliRunner().invoke(app, ["push", str(bundle.path), uri, "verify_remote=md5"])
    assert r.exit_code == 2 and "verify_remote=md5: use one of size, sha256" in r.output


def test_cli_push_of_no_bundle_is_a_usage_error(bundle: ExportResult, tmp_path: Path) -> None:
    """A missing path, or a folder without a bundle, is exit 2 (README: a missing input path), not 1 (a
    bundle refused); a tampered bundle stays exit 1."""
    uri = (tmp_path / "store").as_uri()
    for path in (tmp_path / "nope", tmp_path):
        r = CliRunner().invoke(app, ["push", str(path), uri, "--json"])
        assert r.exit_code == 2 and orjson.loads(r.stdout)["exit_code"] == 2, r.output
    view = next(f.path for f in bundle.manifest.files if f.path.endswith(".jsonl"))
    (bundle.path / view).write_bytes(b"")
    assert CliRunner().invoke(app, ["push", str(bundle.path), uri]).exit_code == 1
    assert not (tmp_path / "store").exists()
