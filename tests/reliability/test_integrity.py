"""Integrity promises: an unredacted bundle is never pushed; a tampered bundle or report, or a
manifest whose paths escape their folder, is refused on fetch/pull, for a local store and for a
real S3 API (moto on 127.0.0.1), and nothing is written outside the destination."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.conftest import record_sample_run
from tests.export.conftest import PII, s3_env, s3_server  # noqa: F401  (fixtures)
from tracebridge.export.bundle import BundleError, compute_bundle_id, sha256_file, verify_bundle
from tracebridge.export.pipeline import ExportResult, export_traces
from tracebridge.export.storage import PushRefused, StorageError, fetch_bundle, open_fs, push_bundle
from tracebridge.report import verify_report
from tracebridge.testing.secret_scan import SECRETS, encodings, planted_env, planted_text, scan


@pytest.fixture
def bundle(tmp_path: Path) -> ExportResult:
    root = tmp_path / "traces"
    record_sample_run(root)
    record_sample_run(root, goal="count words in words.txt", fail_tool=False)
    return export_traces(root, tmp_path / "bundles")


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _view(man: dict) -> str:
    return next(f["path"] for f in man["files"] if f["path"].endswith(".jsonl") and f["bytes"] > 0)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def _view_byte(fs, d: str, man: dict) -> str:  # type: ignore[no-untyped-def]
    key = f"{d}/{_view(man)}"
    data = fs.cat_file(key)
    fs.pipe_file(key, _flip(data, len(data) // 2))
    return "sha256 does not match"


def _manifest_byte(fs, d: str, man: dict) -> str:  # type: ignore[no-untyped-def]
    data = fs.cat_file(f"{d}/manifest.json")
    at = data.index(man["files"][0]["sha256"].encode()) + 10  # one hex digit of a file's hash
    fs.pipe_file(f"{d}/manifest.json", data[:at] + (b"0" if data[at:at + 1] != b"0" else b"1") + data[at + 1:])
    return "does not match"


def _bundle_id_byte(fs, d: str, man: dict) -> str:  # type: ignore[no-untyped-def]
    data = fs.cat_file(f"{d}/manifest.json")
    at = data.index(man["bundle_id"].encode()) + 7
    fs.pipe_file(f"{d}/manifest.json", _flip(data, at))
    return "bundle_id"


def _deleted(fs, d: str, man: dict) -> str:  # type: ignore[no-untyped-def]
    fs.rm_file(f"{d}/{_view(man)}")
    return _view(man)


TAMPER: dict[str, Callable] = {"view_byte": _view_byte, "manifest_byte": _manifest_byte,
                               "bundle_id_byte": _bundle_id_byte, "deleted_file": _deleted}


def _store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "file":
        return (tmp_path / "store").as_uri()
    return f"s3://{request.getfixturevalue('s3_env')}/bundles"


@pytest.mark.parametrize("kind", ["file", "s3"])
@pytest.mark.parametrize("how", sorted(TAMPER))
def test_tampered_bundle_is_refused_on_fetch(bundle: ExportResult, tmp_path: Path, kind: str, how: str,
                                             request: pytest.FixtureRequest) -> None:
    uri = _store(kind, tmp_path, request)
    push_bundle(bundle.path, uri)
    fs, base = open_fs(uri)
    d = f"{base}/{bundle.manifest.bundle_id}"
    man = orjson.loads(fs.cat_file(f"{d}/manifest.json"))
    names = TAMPER[how](fs, d, man)
    out = tmp_path / "pulled"
    with pytest.raises((BundleError, StorageError), match=names.replace(".", r"\.")):
        fetch_bundle(uri, out)
    assert not out.exists() or _tree(out) == set()  # nothing half-fetched is left


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_an_extra_remote_file_is_never_fetched(bundle: ExportResult, tmp_path: Path, kind: str,
                                               request: pytest.FixtureRequest) -> None:
    uri = _store(kind, tmp_path, request)
    push_bundle(bundle.path, uri)
    fs, base = open_fs(uri)
    fs.pipe_file(f"{base}/{bundle.manifest.bundle_id}/views/planner_sft/extra.jsonl", b'{"messages": []}\n')
    path, man = fetch_bundle(uri, tmp_path / "pulled")
    assert "views/planner_sft/extra.jsonl" not in _tree(path)
    assert man.bundle_id == bundle.manifest.bundle_id
    (path / "views" / "planner_sft" / "extra.jsonl").write_bytes(b'{"messages": []}\n')  # planted after the pull
    with pytest.raises(BundleError, match="not listed in the manifest"):
        verify_bundle(path)


BAD_PATHS = ["../x.jsonl", "views/../../x.jsonl", "/tmp/tb-abs-x.jsonl", "a\\..\\..\\x.jsonl", "views/a\0.jsonl",
             "~/x.jsonl"]


@pytest.mark.parametrize("kind", ["file", "s3"])
@pytest.mark.parametrize("bad", BAD_PATHS)
def test_escaping_manifest_paths_are_refused_on_fetch(bundle: ExportResult, tmp_path: Path, kind: str,
                                                      bad: str, request: pytest.FixtureRequest) -> None:
    uri = _store(kind, tmp_path, request)
    push_bundle(bundle.path, uri)
    fs, base = open_fs(uri)
    d = f"{base}/{bundle.manifest.bundle_id}"
    man = orjson.loads(fs.cat_file(f"{d}/manifest.json"))
    man["files"][0]["path"] = bad
    fs.pipe_file(f"{d}/manifest.json", orjson.dumps(man))
    dest = tmp_path / "deep" / "pulled"
    before = _tree(tmp_path)
    with pytest.raises(BundleError, match="files\\[0\\].path"):
        fetch_bundle(f"{uri}/{bundle.manifest.bundle_id}", dest)
    assert {p for p in _tree(tmp_path) - before if not p.startswith("deep/pulled")} <= {"deep"}
    assert not Path("/tmp/tb-abs-x.jsonl").exists()


def test_symlinks_out_of_a_bundle_are_refused(bundle: ExportResult, tmp_path: Path) -> None:
    # a local bundle whose view is a symlink to an outside file with the very same bytes
    man = orjson.loads((bundle.path / "manifest.json").read_bytes())
    view = bundle.path / _view(man)
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(view.read_bytes())
    view.unlink()
    view.symlink_to(outside)
    with pytest.raises(BundleError, match="escapes the bundle \\(symlink\\)"):
        verify_bundle(bundle.path)
    with pytest.raises(PushRefused, match="symlink"):
        push_bundle(bundle.path, (tmp_path / "store").as_uri())
    # a store whose view is a symlink to some other file: its bytes are refused, the pull holds no link
    view.unlink()
    view.write_bytes(outside.read_bytes())
    uri = (tmp_path / "store").as_uri()
    push_bundle(bundle.path, uri)
    remote = tmp_path / "store" / bundle.manifest.bundle_id / _view(man)
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret\n")
    remote.unlink()
    remote.symlink_to(secret)
    with pytest.raises(BundleError, match="sha256 does not match"):
        fetch_bundle(uri, tmp_path / "pulled")
    assert not any(p.is_symlink() for p in (tmp_path / "pulled").rglob("*"))


def _reseal(path: Path) -> None:
    """Recompute every hash of a bundle after an edit: a self-consistent manifest that lies."""
    man = orjson.loads((path / "manifest.json").read_bytes())
    for f in man["files"]:
        f["sha256"] = sha256_file(path / f["path"])
        f["bytes"] = (path / f["path"]).stat().st_size
    man["bundle_id"] = compute_bundle_id([f["sha256"] for f in man["files"]])
    (path / "manifest.json").write_bytes(orjson.dumps(man))


@pytest.mark.parametrize("kind", ["file", "s3"])
@pytest.mark.parametrize("secret", ["email", "aws_key", "card"])
def test_resealed_bundle_with_a_planted_secret_is_not_pushed(bundle: ExportResult, tmp_path: Path, kind: str,
                                                             secret: str, request: pytest.FixtureRequest) -> None:
    value = {"email": PII.get("email", "jane.doe@example.com"), "aws_key": "AKIAIOSFODNN7EXAMPLE",
             "card": "4111 1111 1111 1111"}[secret]
    man = orjson.loads((bundle.path / "manifest.json").read_bytes())
    view = bundle.path / _view(man)
    row = orjson.loads(view.read_bytes().splitlines()[0])
    row["note"] = f"contact {value}"
    with view.open("ab") as fh:
        fh.write(orjson.dumps(row) + b"\n")
    _reseal(bundle.path)
    assert verify_bundle(bundle.path)  # it verifies: only the row scan can catch it
    uri = _store(kind, tmp_path, request)
    with pytest.raises(PushRefused, match=f"{_view(man)}:\\d+:.*found"):
        push_bundle(bundle.path, uri)
    fs, base = open_fs(uri)
    assert not fs.exists(base) or fs.find(base) == []  # nothing landed in storage


@pytest.mark.parametrize("claim", [{"pii_scan": "skipped", "passed_both": False},
                                   {"pii_scan": "findings", "passed_both": False},
                                   {"passed_both": None}])
def test_governance_not_clean_is_not_pushed(bundle: ExportResult, tmp_path: Path, claim: dict) -> None:
    for name in ("manifest.json", "report.json"):  # both records agree: pass 2 failed or was skipped
        doc = orjson.loads((bundle.path / name).read_bytes())
        (doc["data_governance"] if name == "manifest.json" else doc["redaction"]).update(claim)
        (bundle.path / name).write_bytes(orjson.dumps(doc))
    _reseal(bundle.path)
    with pytest.raises(PushRefused, match="(?s)unredacted.*passed_both"):
        push_bundle(bundle.path, (tmp_path / "store").as_uri())
    assert not (tmp_path / "store").exists()


# ---- reports (tracebridge pull) ----

@pytest.fixture
def report_dir(tmp_path: Path) -> Path:
    from tests.report.test_report import trials
    from tracebridge.report import write_report

    write_report(trials(tmp_path / "t", uplift=20), tmp_path / "store" / "r1", config={"roles": ["verifier"]},
                 wall_s=1.0, n_boot=50)
    return tmp_path / "store" / "r1"


def _edit_report_manifest(d: Path, fn: Callable[[dict], None]) -> None:
    man = orjson.loads((d / "manifest.json").read_bytes())
    fn(man)
    (d / "manifest.json").write_bytes(orjson.dumps(man))


REPORT_TAMPER: dict[str, Callable[[Path], str]] = {
    "results_byte": lambda d: (d / "results.json").write_bytes(_flip((d / "results.json").read_bytes(), 5)) and
    "results.json was modified",
    "deleted_file": lambda d: (d / "report.html").unlink() or "report.html is missing",
    "manifest_byte": lambda d: _edit_report_manifest(d, lambda m: m.update(bundle_id="c" * 64)) or "report_id",
    "extra_file": lambda d: (d / "extra.json").write_text("{}") and "extra.json: not listed",
    "escape": lambda d: _edit_report_manifest(d, lambda m: m["files"][0].update(path="../r2/x")) or "escapes",
    "absolute": lambda d: _edit_report_manifest(d, lambda m: m["files"][0].update(path="/etc/hostname")) or "escapes",
    "missing_manifest": lambda d: (d / "manifest.json").unlink() or "manifest.json: missing",
}


@pytest.mark.parametrize("how", sorted(REPORT_TAMPER))
def test_tampered_report_is_refused_on_pull(report_dir: Path, tmp_path: Path, how: str) -> None:
    from tracebridge.cluster.submit import pull_report

    assert pull_report(report_dir.as_uri(), tmp_path / "ok")["problems"] == []
    expect = REPORT_TAMPER[how](report_dir)
    res = pull_report(report_dir.as_uri(), tmp_path / "pulled")
    assert res["problems"] and any(expect in p for p in res["problems"]), res["problems"]
    assert verify_report(tmp_path / "pulled")


def test_report_symlink_out_is_refused(report_dir: Path, tmp_path: Path) -> None:
    res = report_dir / "results.json"
    (tmp_path / "copy.json").write_bytes(res.read_bytes())
    res.unlink()
    os.symlink(tmp_path / "copy.json", res)
    assert any("symlink" in p for p in verify_report(report_dir))


# ---- no secret value in any config, manifest, log or report ----

def test_no_planted_secret_in_anything_the_pipeline_writes(tmp_path: Path, s3_env: str) -> None:  # noqa: F811
    """collect → plant secrets (traces + environment) → export → push (S3 with the planted keys
    as credentials) → fetch → report; then every file written, and every log, is scanned."""
    import subprocess
    import sys

    from tests.export.conftest import record_pii_run
    from tests.report.test_report import trials
    from tracebridge.curate.redact import capture_redactor
    from tracebridge.report import write_report

    repo = Path(__file__).resolve().parents[2]
    traces, bundles, logs = tmp_path / "traces", tmp_path / "bundles", tmp_path / "logs"
    logs.mkdir()
    env = {**os.environ, **planted_env(), "TRACEBRIDGE_LOG_LEVEL": "DEBUG"}

    def tb(name: str, *args: str) -> None:
        with open(logs / f"{name}.log", "wb") as fh:
            rc = subprocess.run([sys.executable, "-m", "tracebridge.cli.__main__", *args], cwd=repo, env=env,
                                stdout=fh, stderr=subprocess.STDOUT, timeout=300, check=False).returncode
        assert rc == 0, (logs / f"{name}.log").read_text()[-2000:]

    tb("collect", "collect", "configs/collect/smoke.yaml", "workers=1", "--out", str(traces))
    record_pii_run(traces, redactor=capture_redactor(), text=planted_text())  # an agent run, redacted at capture
    tb("validate", "validate", str(traces))
    tb("export", "export", str(traces), "--out", str(bundles))
    uri = f"s3://{s3_env}/tb"
    tb("push", "push", str(bundles), uri, "--json")
    path, _ = fetch_bundle(uri, tmp_path / "fetched")
    write_report(trials(tmp_path / "trials", uplift=20), tmp_path / "report",
                 config={"storage": uri, "token_env": "GITHUB_TOKEN"}, wall_s=1.0, n_boot=50)
    n, leaks = scan([tmp_path])
    assert n > 50 and leaks == []
    assert (path / "manifest.json").is_file() and len(list(logs.glob("*.log"))) == 4
    # the planted values really went through: capture found every kind, the push used the keys
    gov = orjson.loads(next(bundles.glob("*/report.json")).read_bytes())["redaction"]
    assert {"AWS_KEY", "GITHUB_TOKEN", "URL_PASSWORD", "EMAIL", "CARD"} <= set(gov["passes"][0]["findings_by_type"])
    # and the scan sees an encoded leak
    (tmp_path / "control.txt").write_bytes(b"x" + encodings(SECRETS["aws_secret"])[1])
    assert scan([tmp_path])[1] == [f"{tmp_path / 'control.txt'}: aws_secret"]
    assert SECRETS["aws_key"].encode() not in b"".join((logs / f).read_bytes() for f in os.listdir(logs))
