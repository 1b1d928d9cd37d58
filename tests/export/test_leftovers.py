"""The temporary files and folders that push, fetch and pull killed mid-way leave (``.part`` copies in the
storage's bundle folders, ``.fetch-*`` partial bundles, ``.pull-*`` partial reports) stayed for good, and a fetch
folder holding a killed fetch's ``.fetch-*`` with its manifest was "2 bundles; name one". Now the next push, fetch
or pull removes the stale ones (older than an hour, not held by a live process: ``tracebridge.export.leftovers``),
and a hidden folder is never taken for a bundle. Leftovers are laid out as the commands name them, with the tag of
a process that has exited (or of one still running, kept) and their times set back."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.report.test_report import small_report
from tracebridge.cli import app
from tracebridge.export.pipeline import ExportResult, export_traces
from tracebridge.export.storage import fetch_bundle, push_bundle, resolve_bundle_dir

HOST = socket.gethostname()


@pytest.fixture
def bundle(mixed_traces: Path, tmp_path: Path) -> ExportResult:
    return export_traces(mixed_traces, tmp_path / "bundles")


@pytest.fixture
def tags() -> Iterator[tuple[str, str]]:
    """``(dead, live)``: the temp-name tags of a process that has exited and of one still running here."""
    done = subprocess.Popen(["true"])
    done.wait()
    live = subprocess.Popen(["sleep", "120"])
    try:
        yield f"{done.pid}@{HOST}+", f"{live.pid}@{HOST}+"
    finally:
        live.kill()
        live.wait()


def _age(path: Path, hours: float = 2) -> Path:
    """Set ``path`` and everything in it back ``hours``."""
    t = time.time() - hours * 3600
    for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
        os.utime(p, (t, t), follow_symlinks=False)
    return path


def test_fetch_removes_stale_fetch_folders_and_never_lists_them(bundle: ExportResult, tags: tuple[str, str],
                                                                tmp_path: Path) -> None:
    dead, live = tags
    store, out = tmp_path / "store", tmp_path / "fetched"
    push_bundle(bundle.path, str(store))
    fetch_bundle(str(store), out)
    # a fetch killed after it wrote its manifest: a whole bundle in a hidden folder
    killed = _age(Path(shutil.copytree(bundle.path, out / f".fetch-{dead}k1l2e3d4")))
    running = _age(Path(shutil.copytree(bundle.path / "views", out / f".fetch-{live}r5u6n7s8")))
    untagged_old = _age(Path(shutil.copytree(bundle.path / "views", out / ".fetch-0ld9x2ab")))
    untagged_new = Path(shutil.copytree(bundle.path / "views", out / ".fetch-n3wq7c1d"))
    assert resolve_bundle_dir(out) == out / bundle.manifest.bundle_id  # was: "2 bundles; name one"
    shutil.rmtree(out / bundle.manifest.bundle_id)  # so the fetch downloads again (into a temp folder)
    path, _ = fetch_bundle(str(store), out)
    assert path == out / bundle.manifest.bundle_id
    assert not killed.exists() and not untagged_old.exists()
    assert running.exists() and untagged_new.exists()  # a running fetch's, and a recent one of unknown owner
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".fetch-") and "+" not in p.name[7:]) == \
        [untagged_new.name]  # the fetch's own temp folder is gone


def test_push_removes_stale_part_files_of_killed_pushes(bundle: ExportResult, tags: tuple[str, str],
                                                       tmp_path: Path) -> None:
    dead, live = tags
    store = tmp_path / "store"
    push_bundle(bundle.path, str(store))
    views = store / bundle.manifest.bundle_id / "views" / "worker_sft"
    killed = views / f".train.jsonl.{dead}0a1b2c3d4e5f.part"
    killed.write_bytes(b"half a file")
    _age(killed)
    old_style = store / f".LATEST.{'9' * 12}.part"  # a name from before tags: by age alone
    old_style.write_bytes(b"{")
    _age(old_style)
    running = store / f".LATEST.{live}5e4d3c2b1a0f.part"
    running.write_bytes(b"{")
    _age(running)
    recent = views / f".train.jsonl.{dead}aaaaaaaaaaaa.part"
    recent.write_bytes(b"x")
    assert push_bundle(bundle.path, str(store))["status"] == "exists"
    assert not killed.exists() and not old_style.exists()
    assert running.exists() and recent.exists()


def test_pull_removes_stale_pull_folders(tags: tuple[str, str], tmp_path: Path) -> None:
    dead, live = tags
    report = small_report(tmp_path, tmp_path / "store" / "reports" / "sw-1")
    out = tmp_path / "pulled"
    out.mkdir()
    killed = _age(Path(shutil.copytree(report, out / f".pull-{dead}sw-1-ab12cd34")))
    moved_aside = _age(Path(shutil.copytree(report, out / f".old-sw-1-.pull-{dead}sw-1-ef56gh78")))
    running = _age(Path(shutil.copytree(report, out / f".pull-{live}sw-1-ij90kl12")))
    other = out / ".old-notes"  # not a pull's: left alone whatever its age
    other.write_text("mine")
    _age(other)
    res = CliRunner().invoke(app, ["pull", str(report), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert not killed.exists() and not moved_aside.exists()
    assert running.exists() and other.read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == sorted([".old-notes", running.name, "sw-1"])


def test_report_push_to_a_local_storage_removes_stale_copies(tags: tuple[str, str], tmp_path: Path) -> None:
    from tracebridge.sweep.storage import put_dir

    dead, live = tags
    report = small_report(tmp_path, tmp_path / "local" / "sw-1")
    reports = tmp_path / "storage" / "reports"
    put_dir(report, str(reports / "sw-1"))
    killed = _age(Path(shutil.copytree(report, reports / f".sw-1.{dead}ab12cd34.copy")))
    swapped = _age(Path(shutil.copytree(report, reports / f".sw-1.{dead}ef56gh78.copy.old")))
    running = _age(Path(shutil.copytree(report, reports / f".sw-1.{live}ij90kl12.copy")))
    put_dir(report, str(reports / "sw-1"))
    assert not killed.exists() and not swapped.exists() and running.exists()
    assert sorted(p.name for p in reports.iterdir()) == sorted([running.name, "sw-1"])


def test_push_to_s3_aborts_stale_multipart_uploads(bundle: ExportResult, s3_env: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A push killed while s3fs sent a file in parts (100 MiB and more) left that upload open: never listed, its
    parts stored (and billed) for good. Laid out as it leaves one: an upload started, a part sent, never completed."""
    import boto3

    from tracebridge.export import leftovers

    s3, bid = boto3.client("s3"), bundle.manifest.bundle_id

    def killed_upload(key: str) -> str:
        up = s3.create_multipart_upload(Bucket=s3_env, Key=key)["UploadId"]
        s3.upload_part(Bucket=s3_env, Key=key, UploadId=up, PartNumber=1, Body=b"x" * (5 << 20))
        return key

    def open_uploads() -> list[str]:
        return sorted(u["Key"] for u in s3.list_multipart_uploads(Bucket=s3_env).get("Uploads", []))

    uri = f"s3://{s3_env}/tb/bundles"
    mine = killed_upload(f"tb/bundles/{bid}/views/worker_sft/train.jsonl")
    others = killed_upload("elsewhere/big.bin")  # not under the push's URI: not its to abort
    with monkeypatch.context() as m:  # younger than the threshold: may still be running
        m.setattr(leftovers, "STALE_UPLOAD_S", float("inf"))
        assert push_bundle(bundle.path, uri)["status"] == "published"
    assert open_uploads() == sorted([mine, others])
    # moto says every upload started on 2010-11-10: older than a day
    assert push_bundle(bundle.path, uri)["status"] == "exists"
    assert open_uploads() == [others]
