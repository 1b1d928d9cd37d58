"""``gs://`` end to end against a real GCS JSON API (gcp-storage-emulator on 127.0.0.1, anonymous): ``push`` and
``fetch`` of a bundle, a damaged copy repaired, a report put there as the sweep job does and ``pull``-ed back.
Before, ``gs://`` opened gcsfs's experimental default class, which asks a storage-control gRPC API for the
bucket's layout before its operations and asks again after each failed answer: ~110 warnings for one push and
fetch here, and 60 s of its own (outside ``request_timeout_s``) per operation where that API does not answer."""

from __future__ import annotations

import http.server
import json
import logging
import os
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.report.test_report import small_report
from tracebridge.cli import app
from tracebridge.export.pipeline import export_traces
from tracebridge.sweep.storage import put_dir

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> dict:
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_gcs_bundle_push_fetch_and_repair(gcs_env: str, mixed_traces: Path, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    from gcsfs.core import GCSFileSystem

    bundle = export_traces(mixed_traces, tmp_path / "bundles")
    uri, bid = f"{gcs_env}/bundles", bundle.manifest.bundle_id
    caplog.set_level(logging.WARNING, logger="gcsfs")
    assert _run("push", str(bundle.path), uri)["status"] == "published"
    fetched = _run("fetch", uri, "--out", str(tmp_path / "fetched"))
    assert fetched["bundle_id"] == bid, fetched
    got = Path(fetched["path"])
    assert {p.relative_to(got).as_posix(): p.read_bytes() for p in got.rglob("*") if p.is_file()} == \
        {p.relative_to(bundle.path).as_posix(): p.read_bytes() for p in bundle.path.rglob("*") if p.is_file()}
    lookups = [r.getMessage() for r in caplog.records if "bucket type" in r.getMessage()]
    assert not lookups, f"{len(lookups)} look-ups of the bucket's layout, e.g. {lookups[0]}"

    fs = GCSFileSystem(token="anon", skip_instance_cache=True)
    fs.rm_file(f"{uri.removeprefix('gs://')}/{bid}/report.md")
    fs.pipe_file(f"{uri.removeprefix('gs://')}/{bid}/runs.jsonl", b"cut")
    res = _run("push", str(bundle.path), uri)
    assert res["status"] == "repaired"
    assert {r["path"]: r["problem"] for r in res["repaired"]} == {
        "report.md": "missing", "runs.jsonl": f"3 bytes, not {(bundle.path / 'runs.jsonl').stat().st_size}"}
    assert _run("fetch", f"{uri}/{bid}", "--out", str(tmp_path / "again"))["bundle_id"] == bid


def test_gcs_report_put_then_pull_verified(gcs_env: str, tmp_path: Path) -> None:
    from gcsfs.core import GCSFileSystem

    report = small_report(tmp_path, tmp_path / "local" / "sw-1")
    uri = f"{gcs_env}/reports/sw-1"
    put_dir(report, uri)  # what jobs/sweep.py's report push does
    fs = GCSFileSystem(token="anon", skip_instance_cache=True)
    fs.pipe_file(f"{uri.removeprefix('gs://')}/old/plot.svg", b"<svg/>")  # a file of an earlier push there
    put_dir(report, uri)  # removes it once the report is there
    assert sorted(k.rsplit("/", 1)[1] for k in fs.find(uri.removeprefix("gs://"))) == \
        ["manifest.json", "report.html", "results.json"]
    res = _run("pull", uri, "--out", str(tmp_path / "pulled"))
    assert res["ok"] and res["problems"] == [], res
    for name in ("manifest.json", "results.json", "report.html"):
        assert (tmp_path / "pulled" / "sw-1" / name).read_bytes() == (report / name).read_bytes()


class _Refuse(http.server.BaseHTTPRequestHandler):
    """Answers every request as GCS answers credentials it refuses: 403 with a JSON error."""

    def _refuse(self) -> None:
        body = json.dumps({"error": {"code": 403, "message": "anonymous caller does not have storage.objects.get"}})
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _refuse

    def log_message(self, *args: object) -> None:
        pass


def test_gcs_refusal_exits_2_naming_the_credentials(gcs_env: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """gcsfs raises a 403 as a plain OSError("Forbidden: ..."): it was retried as a storage that cannot be reached
    and exited 3 ("failed after 4 attempt(s)"), where S3's 403 exits 2 naming the credentials to check."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        for args in (["fetch", f"{gcs_env}/bundles", "--out", str(tmp_path / "f")],
                     ["pull", f"{gcs_env}/reports/sw-1", "--out", str(tmp_path / "p")]):
            res = CliRunner().invoke(app, [*args, "--json", "retry.backoff_s=0.01"])
            error = json.loads(res.stdout)["error"]
            assert res.exit_code == 2, (args, error)
            assert f"{gcs_env}" in error and "credentials used: none (anonymous" in error \
                and "check GOOGLE_APPLICATION_CREDENTIALS" in error, error
    finally:
        server.shutdown()



# a process opening gs:// anonymously, with a metadata server's address (GCE_METADATA_HOST/IP) that takes each
# connection, reads the request and closes it unanswered: it prints how many connections one open made, then how
# many a write, a read, a look-up and a list made after it, then what they returned
_OPENS = """
import os, socket, sys, threading
sock, probes = socket.create_server(("127.0.0.1", 0)), [0]
def serve():
    while True:
        conn, _ = sock.accept()
        probes[0] += 1
        with conn:
            conn.recv(65536)
threading.Thread(target=serve, daemon=True).start()
os.environ["GCE_METADATA_HOST"] = os.environ["GCE_METADATA_IP"] = "127.0.0.1:%d" % sock.getsockname()[1]
os.environ.pop("NO_GCE_CHECK", None)  # google-auth reads it on import
from tracebridge.export.storage import open_fs
from tracebridge.sweep.storage import exists, list_names, put_text, read_text
uri = sys.argv[1]
open_fs(uri)
once = probes[0]
put_text(f"{uri}/a.txt", "a")
got = [read_text(f"{uri}/a.txt"), exists(f"{uri}/a.txt"), list_names(uri)]
print(once, probes[0] - once, *got)
"""


def test_gcs_credentials_are_looked_up_once_per_process(gcs_env: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Anonymous ``gs://``: each filesystem opened looked for credentials again, probing the metadata server (~12 s
    per open where its address is dropped; every storage call opens one). Now the look-up is kept per process and
    environment: after the first open, a write, a read, a look-up and a list probe it no more (in a fresh process:
    google-auth reads the variables on import); a changed environment looks again."""
    import subprocess
    import sys

    from tracebridge.export.storage import open_fs

    done = subprocess.run([sys.executable, "-c", _OPENS, gcs_env], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    once, after, *got = done.stdout.split()
    assert int(once) >= 1, "the credential look-up did not probe the metadata server: the test tests nothing"
    assert got == ["a", "True", "['a.txt']"], done.stdout
    assert after == "0", f"4 storage calls after the first open probed the metadata server {after} more times"
    # another environment is looked up again (a missing credentials file: refused at once, no probe)
    before = open_fs(gcs_env)[0].credentials
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))
    again = open_fs(gcs_env)[0].credentials
    assert again is not before and again.method == "anon" and open_fs(gcs_env)[0].credentials is again
