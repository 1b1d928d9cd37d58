"""Storage misuse: mistyped URIs, corrupt manifests on either side, object keys that escape, and
report pulls that fail; each is refused with a located message, no traceback and no artefact that
looks complete."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import boto3
import orjson
import pytest
from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.cluster.submit import pull_report
from tracebridge.export.bundle import BundleError, safe_relpath
from tracebridge.export.pipeline import ExportResult, export_traces
from tracebridge.export.storage import StorageError, fetch_bundle, push_bundle
from tracebridge.report import verify_report

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bundle(mixed_traces: Path, tmp_path: Path) -> ExportResult:
    return export_traces(mixed_traces, tmp_path / "bundles")


@pytest.fixture
def report(tmp_path: Path) -> Path:
    from tests.report.test_report import trials
    from tracebridge.report import write_report

    write_report(trials(tmp_path / "t", uplift=20), tmp_path / "store" / "r1", config={"roles": ["verifier"]},
                 wall_s=1.0, n_boot=50)
    return tmp_path / "store" / "r1"


@pytest.mark.parametrize("uri, expect", [("s3:/bucket/x", "'s3:' must be followed by '//'"),
                                         ("file:relative", "'file:' must be followed by '//'"),
                                         ("s3://", "no bucket")])
def test_mistyped_uris_are_refused_not_taken_as_local_folders(bundle: ExportResult, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              uri: str, expect: str) -> None:
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(StorageError, match=expect):
        push_bundle(bundle.path, uri)
    with pytest.raises(StorageError, match=expect):
        fetch_bundle(uri, tmp_path / "pulled")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no ./s3:/bucket, no ./relative


def test_storage_that_cannot_be_reached_on_open_is_an_error_not_a_traceback(bundle: ExportResult) -> None:
    res = CliRunner().invoke(app, ["push", str(bundle.path), "ftp://127.0.0.1:1/x"])
    assert res.exit_code == 3 and "cannot reach this storage" in res.stderr, res.output  # a later try may work
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_fetch_names_the_bundle_folder_and_refuses_a_bad_manifest_field(bundle: ExportResult, tmp_path: Path) -> None:
    uri = (tmp_path / "store").as_uri()
    bid = push_bundle(bundle.path, uri)["bundle_id"]
    remote = tmp_path / "store" / bid
    (remote / "report.md").write_text("# forged\n")
    with pytest.raises(BundleError, match=f"store/{bid}/report.md: sha256 does not match"):
        fetch_bundle(uri, tmp_path / "pulled")  # via LATEST: the message names where the file is
    man = orjson.loads((remote / "manifest.json").read_bytes())
    man["files"][0]["bytes"] = "lots"
    (remote / "manifest.json").write_bytes(orjson.dumps(man))
    res = CliRunner().invoke(app, ["fetch", uri, "--out", str(tmp_path / "pulled")])
    assert res.exit_code == 1 and f"{bid}/manifest.json:files[0].bytes: 'lots'" in res.stderr, res.output
    assert not list((tmp_path / "pulled").glob("[0-9a-f]*"))


@pytest.mark.parametrize("bad", ["views/./x.jsonl", "views//x.jsonl", "views/x.jsonl/"])
def test_manifest_paths_must_be_in_normal_form(bad: str) -> None:
    # two spellings of one file could carry two hashes; the last one downloaded would win
    with pytest.raises(BundleError, match="normal form"):
        safe_relpath(bad)


def test_push_over_a_corrupt_remote_manifest_publishes_again(bundle: ExportResult, tmp_path: Path) -> None:
    uri = (tmp_path / "store").as_uri()
    bid = bundle.manifest.bundle_id
    (tmp_path / "store" / bid).mkdir(parents=True)
    (tmp_path / "store" / bid / "manifest.json").write_text("{torn")
    res = push_bundle(bundle.path, uri)  # a damaged copy, repaired: every file and the manifest named
    assert res["status"] == "repaired" and res["repaired"][-1]["path"] == "manifest.json"
    assert len(res["repaired"]) == len(bundle.manifest.files) + 1
    assert push_bundle(bundle.path, uri)["status"] == "exists"
    assert fetch_bundle(uri, tmp_path / "pulled")[1].bundle_id == bid


def test_failed_pull_keeps_the_verified_report_and_leaves_nothing(report: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "r1"
    assert pull_report(report.as_uri(), out)["problems"] == []
    (report / "results.json").write_text("{}")
    res = pull_report(report.as_uri(), out)
    assert res["problems"] == [f"{report.as_uri()}/manifest.json:files[0].sha256: results.json was modified"]
    assert res["report_html"] is None and res["manifest"] is None
    assert verify_report(out) == []  # the earlier, verified copy is still there and whole
    assert sorted(p.name for p in out.parent.iterdir()) == ["r1"]  # no temp folder left
    (report / "manifest.json").write_text("{not json")
    assert "not a report manifest" in pull_report(report.as_uri(), tmp_path / "other")["problems"][0]
    assert not (tmp_path / "other").exists()
    assert "'s3:' must be followed by '//'" in pull_report("s3:/bucket/r1", tmp_path / "x")["problems"][0]


def test_pull_refuses_object_keys_that_escape(report: Path, s3_env: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    for f in report.iterdir():
        s3.put_object(Bucket=s3_env, Key=f"reports/r1/{f.name}", Body=f.read_bytes())
    s3.put_object(Bucket=s3_env, Key="reports/r1/../../../escaped.txt", Body=b"x")
    out = tmp_path / "a" / "b" / "r1"
    res = pull_report(f"s3://{s3_env}/reports/r1", out)
    assert any("escapes" in p for p in res["problems"]), res["problems"]
    assert not (tmp_path / "escaped.txt").exists() and not out.exists()


def test_sweep_config_refuses_mistyped_bundle_and_storage_uris() -> None:
    from tracebridge.config import ConfigError
    from tracebridge.sweep.config import load_sweep_config

    root = Path(__file__).resolve().parents[2]
    with pytest.raises(ConfigError) as err:
        load_sweep_config(str(root / "configs/sweep/smoke.yaml"), ["bundle=s3:/bucket/b", "storage=gs:bkt"])
    assert "bundle: 's3:/bucket/b': 's3:' must be followed by '//'" in str(err.value)
    assert "storage: 'gs:bkt'" in str(err.value)
    json.dumps(err.value.problems)  # plain strings, for --json callers


def test_a_file_in_the_way_of_out_is_an_error_not_a_traceback(bundle: ExportResult, report: Path,
                                                               tmp_path: Path) -> None:
    uri = (tmp_path / "store").as_uri()
    push_bundle(bundle.path, uri)
    (tmp_path / "afile").write_text("")
    res = CliRunner().invoke(app, ["fetch", uri, "--out", str(tmp_path / "afile")])
    assert res.exit_code == 2 and "afile: cannot hold the fetched bundle" in res.stderr, res.output
    res = CliRunner().invoke(app, ["pull", report.as_uri(), "--out", str(tmp_path / "afile"), "--json"])
    # checked before anything is fetched (README: `--out` that is a file is refused before any work, exit 2)
    assert res.exit_code == 2 and "afile is a file, not a folder" in json.loads(res.stdout)["error"], res.output


def test_train_seeds_that_are_not_numbers_are_a_usage_error(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    res = CliRunner().invoke(app, ["train", str(root / "configs/train/cpu_tiny.yaml"), "--bundle", str(tmp_path),
                                   "--seeds", "0,x", "--out", str(tmp_path / "runs")])
    assert res.exit_code == 2 and "--seeds 0,x: use a comma list of whole numbers" in res.stderr, res.output
    assert not (tmp_path / "runs").exists()


@pytest.fixture
def no_credentials(s3_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The moto bucket with every AWS credential source removed (environment, files, instance metadata)."""
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    for k in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"):
        monkeypatch.setenv(k, str(tmp_path / "no-such-file"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return s3_env


def test_missing_s3_credentials_fail_at_once_saying_where_to_set_them(bundle: ExportResult, no_credentials: str,
                                                                      tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    from tracebridge.cluster.config import ClusterConfig
    from tracebridge.cluster.submit import plan_sweep
    from tracebridge.config import ConfigError

    uri, fix = f"s3://{no_credentials}/bundles", "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING), pytest.raises(StorageError, match=f"no storage credentials found.*{fix}"):
        push_bundle(bundle.path, uri)  # default retry: 4 tries, 1 + 2 + 4 s of backoff, none of it useful
    assert time.monotonic() - t0 < 3 and "retrying" not in caplog.text
    res = CliRunner().invoke(app, ["fetch", uri, "--out", str(tmp_path / "pulled")])
    assert res.exit_code == 2 and fix in res.stderr, res.output
    with pytest.raises(ConfigError, match=fix):  # submit pre-flight reads the manifest on the driver
        plan_sweep(ROOT / "configs/sweep/smoke.yaml", [f"bundle={uri}", f"storage={tmp_path}/s"], ClusterConfig(), ROOT)


def test_submit_checks_a_remote_bundle_manifest_without_downloading_files(bundle: ExportResult, s3_env: str) -> None:
    from tracebridge.cluster.submit import check_bundle

    bid = push_bundle(bundle.path, f"s3://{s3_env}/bundles")["bundle_id"]
    s3 = boto3.client("s3")
    s3.delete_object(Bucket=s3_env, Key=f"bundles/{bid}/runs.jsonl")  # the job's fetch catches this, not submit
    assert check_bundle(f"s3://{s3_env}/bundles") == bid  # via LATEST
    with pytest.raises(FileNotFoundError):
        check_bundle(f"s3://{s3_env}/nothing")
    s3.put_object(Bucket=s3_env, Key="torn/manifest.json", Body=b"{torn")
    with pytest.raises(ValueError, match="torn/manifest.json:1: not valid JSON"):
        check_bundle(f"s3://{s3_env}/torn")
    s3.put_object(Bucket=s3_env, Key="odd/manifest.json", Body=b'{"bundle_id": "x", "files": []}')
    with pytest.raises(BundleError, match="odd/manifest.json:bundle_id: missing or not a sha256"):
        check_bundle(f"s3://{s3_env}/odd")


def test_fetch_over_a_damaged_local_copy_fetches_it_again(bundle: ExportResult, tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/store"
    bid = push_bundle(bundle.path, uri)["bundle_id"]
    local, _ = fetch_bundle(uri, tmp_path / "pulled")
    view = next((local / "views").rglob("*.jsonl"))
    good = view.read_bytes()
    view.write_bytes(good[:-7])  # damaged since it was fetched
    (local / "views" / "stray.jsonl").write_text("{}\n")
    again, man = fetch_bundle(uri, tmp_path / "pulled")
    assert again == local and man.bundle_id == bid
    assert view.read_bytes() == good and not (local / "views" / "stray.jsonl").exists()
    assert [p.name for p in (tmp_path / "pulled").iterdir()] == [bid]  # no temp or old folder left


def test_a_bucket_that_does_not_exist_is_named(report: Path, s3_env: str, tmp_path: Path) -> None:
    """The store answers a key under a missing bucket as a missing key: ``pull`` said "no report there (no such
    folder)", ``fetch`` "no published bundle", a report push "The specified bucket does not exist" without the URI,
    the jobs' write probe "cannot write there (FileNotFoundError: ...)". Each now names the bucket."""
    from tracebridge.sweep.config import SweepConfig
    from tracebridge.sweep.publish import storage_problem
    from tracebridge.sweep.storage import put_dir

    missing = f"{s3_env}-missing"  # s3_env: a bucket that exists, so the endpoint and credentials are right
    said = f"the bucket {missing!r} does not exist there; check its name"
    for args in (["pull", f"s3://{missing}/reports/sw-1", "--out", str(tmp_path / "p")],
                 ["fetch", f"s3://{missing}/bundles", "--out", str(tmp_path / "f")]):
        res = CliRunner().invoke(app, [*args, "--json", "retry.attempts=1"])
        assert res.exit_code == 2 and said in json.loads(res.stdout)["error"], res.output
    with pytest.raises(StorageError, match=f"^s3://{missing}/reports/sw-1: {said}"):
        put_dir(report, f"s3://{missing}/reports/sw-1")
    problem = storage_problem(SweepConfig(storage=f"s3://{missing}/runs"))
    assert problem is not None and problem[1] == 2, problem
    assert problem[0].startswith(f"storage=s3://{missing}/runs: cannot write there (s3://{missing}/runs: {said}"), problem
