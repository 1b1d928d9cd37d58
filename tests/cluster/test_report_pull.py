"""``tracebridge pull`` while a push overwrites the report, against a real S3 API (moto on 127.0.0.1). A push sends
the report's files first and its manifest last, so a read in between got the new files under the old manifest:
the pull refused the report as "modified" (exit 1, as for a tampered one). Now a read that does not verify is read
again: the pushed report once the push has ended; "changed while it was read" (exit 3, try later) when every read
differs; a report damaged for good (the same bytes twice) still exits 1.

The writer's steps are sequenced by the pull's own "reading it again" log line (a handler that sends the next
objects with boto3), so each read meets the state the test means."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from tests.export.conftest import moto_server
from tests.report.test_report import trials
from tracebridge.cli import app
from tracebridge.report import write_report
from tracebridge.sweep.storage import put_dir

BUCKET, KEY = "tb-reports", "reports/sw-1"
URI = f"s3://{BUCKET}/{KEY}"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    with moto_server() as url:
        for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": url}.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        client = boto3.client("s3", endpoint_url=url)
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def reports(tmp_path: Path) -> tuple[Path, Path]:
    """Two reports of one sweep (other results), A pushed."""
    a, b = tmp_path / "A", tmp_path / "B"
    write_report(trials(tmp_path / "ta", uplift=20), a, config={"roles": ["verifier"]}, wall_s=1.0, n_boot=20)
    write_report(trials(tmp_path / "tb", uplift=0), b, config={"roles": ["verifier"]}, wall_s=2.0, n_boot=20)
    put_dir(a, URI)
    return a, b


class OnReadAgain(logging.Handler):
    """Runs the next of ``steps`` each time the pull says it reads the report again."""

    def __init__(self, steps: list[Callable[[], None]]) -> None:
        super().__init__(logging.WARNING)
        self.steps = steps

    def emit(self, record: logging.LogRecord) -> None:
        if "reading it again" in record.getMessage() and self.steps:
            self.steps.pop(0)()


def _pull(tmp_path: Path, steps: list[Callable[[], None]], attempts: int = 4) -> tuple[int, dict]:
    handler = OnReadAgain(steps)
    logging.getLogger("tracebridge").addHandler(handler)
    try:
        res = CliRunner().invoke(app, ["pull", URI, "--out", str(tmp_path / "out"), "--json",
                                       f"retry.attempts={attempts}", "retry.backoff_s=0.01"])
    finally:
        logging.getLogger("tracebridge").removeHandler(handler)
    return res.exit_code, json.loads(res.stdout)


def _put(s3, report: Path, *names: str) -> Callable[[], None]:  # type: ignore[no-untyped-def]
    return lambda: [s3.put_object(Bucket=BUCKET, Key=f"{KEY}/{n}", Body=(report / n).read_bytes()) for n in names]


def test_pull_during_a_push_over_the_report_gets_the_pushed_report(s3, reports, tmp_path: Path) -> None:
    _, b = reports
    _put(s3, b, "results.json", "report.html")()  # the push's files are there; its manifest not yet
    code, res = _pull(tmp_path, [_put(s3, b, "manifest.json")])  # the push ends before the second read
    assert code == 0, res
    for name in ("manifest.json", "results.json", "report.html"):
        assert (tmp_path / "out" / "sw-1" / name).read_bytes() == (b / name).read_bytes()


def test_a_report_that_changes_on_every_read_is_said_so_exit_3(s3, reports, tmp_path: Path) -> None:
    a, b = reports
    _put(s3, b, "results.json")()
    # under A's manifest: B's results, then A's results with B's page, then both of B's: torn each time, never alike
    steps = [lambda: (_put(s3, a, "results.json")(), _put(s3, b, "report.html")()), _put(s3, b, "results.json")]
    code, res = _pull(tmp_path, steps, attempts=3)
    assert code == 3, res
    assert res["error"].startswith(f"{URI}: the report changed while it was read (3 reads"), res["error"]
    assert not (tmp_path / "out" / "sw-1").exists()


def test_a_damaged_report_read_twice_the_same_exits_1(s3, reports, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key=f"{KEY}/results.json", Body=b"{}")
    code, res = _pull(tmp_path, [])
    assert code == 1, res
    assert res["problems"] == [f"{URI}/manifest.json:files[0].sha256: results.json was modified"], res


def test_submit_reads_a_report_changing_on_every_read_as_try_again_later(s3, reports, tmp_path: Path) -> None:
    """``submit --wait`` pulls through ``pull_job_report``: a report another attempt keeps overwriting is
    ``report_changing`` (exit 3, as ``pull``), not a damaged report (exit 1)."""
    from types import SimpleNamespace

    from tracebridge.cluster.outcome import pull_job_report
    from tracebridge.config import load_config
    from tracebridge.export.config import StorageConfig

    a, b = reports
    _put(s3, b, "results.json")()
    steps = [lambda: (_put(s3, a, "results.json")(), _put(s3, b, "report.html")()), _put(s3, b, "results.json")]
    io = load_config(StorageConfig, None, ["retry.attempts=3", "retry.backoff_s=0.01"])
    plan = SimpleNamespace(report_uri=URI, sweep_id="sw-1", cfg=SimpleNamespace(storage_io=io), expect=lambda s: None)
    handler = OnReadAgain(steps)
    logging.getLogger("tracebridge").addHandler(handler)
    try:
        res = pull_job_report(plan, "sw-1-a1", tmp_path / "out")
    finally:
        logging.getLogger("tracebridge").removeHandler(handler)
    assert res["report_changing"] is True and res["report"] is None and res["report_problems"], res
    assert "storage_unreachable" not in res


def _push_cut_at_results(s3, report: Path, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                         name: str = "results.json") -> None:
    """``put_dir(report, URI)`` through a proxy that drops each connection sending ``name``: a push cut short (a
    job killed or cut off mid-push) after ``PUSHING`` and the files before ``name`` (``report.html`` goes first)."""
    import re

    from tests.jobs.test_report_push import CutReportsProxy
    from tracebridge.config import load_config
    from tracebridge.export.config import StorageConfig
    from tracebridge.export.storage import StorageError

    url = s3.meta.endpoint_url
    proxy = CutReportsProxy(int(url.rsplit(":", 1)[1]), re.compile(rb"PUT /[^ ]*/" + re.escape(name.encode())))
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.port}")
    try:
        with pytest.raises(StorageError, match=re.escape(name)):
            put_dir(report, URI, load_config(StorageConfig, None, ["retry.attempts=1", "request_timeout_s=5"]))
    finally:
        proxy.close()
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    assert proxy.cut


def test_a_report_push_cut_short_is_incomplete_naming_what_is_missing_and_a_rerun_completes_it(
        s3, reports, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job killed (or cut off) while it pushed its report over an earlier one left the new files beside the old
    manifest: ``pull`` called the report "modified", as a tampered one. The push now sends its manifest first under
    ``PUSHING`` and removes it last: ``pull`` says the report is incomplete and names the files not there yet
    (exit 1, ``incomplete``), and running the push again completes it. The push is cut by a proxy that drops each
    connection sending ``results.json``."""
    from tracebridge.sweep.storage import PUSHING

    _, b = reports
    _push_cut_at_results(s3, b, monkeypatch)
    assert s3.get_object(Bucket=BUCKET, Key=f"{KEY}/{PUSHING}")["Body"].read() == \
        (b / "manifest.json").read_bytes()
    report_id = json.loads((b / "manifest.json").read_text())["report_id"]
    code, res = _pull(tmp_path, [])
    assert code == 1 and res["incomplete"] is True, res
    assert res["problems"] == [(f"{URI}: incomplete report: a push of report {report_id} there was cut short or is "
                                "still running; not there yet: results.json, manifest.json; run that push again to "
                                "complete it (or pull once it has ended)")], res
    assert not (tmp_path / "out" / "sw-1").exists()

    put_dir(b, URI)  # the job's push run again
    code, res = _pull(tmp_path, [])
    assert code == 0, res
    assert sorted(p.name for p in (tmp_path / "out" / "sw-1").iterdir()) == ["manifest.json", "report.html",
                                                                             "results.json"]
    assert (tmp_path / "out" / "sw-1" / "results.json").read_bytes() == (b / "results.json").read_bytes()


def test_a_first_report_push_cut_before_its_manifest_is_incomplete(s3, tmp_path: Path) -> None:
    """A report's first push cut short (here by a push of an earlier version, which wrote no ``PUSHING``): the
    pull said "manifest.json: missing"; now it says the report is incomplete and which files are there."""
    s3.put_object(Bucket=BUCKET, Key=f"{KEY}/results.json", Body=b"{}")
    code, res = _pull(tmp_path, [])
    assert code == 1 and res["incomplete"] is True, res
    assert res["problems"] == [(f"{URI}/manifest.json: missing: an incomplete report (a push cut short or still "
                                "running: its manifest goes last), only results.json there; run that push again to "
                                "complete it (or pull once it has ended)")], res
    s3.put_object(Bucket=BUCKET, Key=f"{KEY}/.manifest.pushing.json", Body=b"{cut")  # no manifest of a report
    code, res = _pull(tmp_path, [])
    assert code == 1 and res["incomplete"] is True, res
    assert res["problems"] == [(f"{URI}/.manifest.pushing.json: incomplete report: the manifest of its push is not a "
                                "report manifest; run that push again to complete it (or pull once it has ended)")], res


def _keys(s3, prefix: str) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def test_a_report_pushed_again_leaves_no_file_of_the_earlier_push(s3, reports, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A report pushed over one with more files (another version's, an earlier attempt's) left those files there:
    ``pull`` refused the new report for files its manifest does not list. The push now removes them once its files
    and manifest are there, never before (a push cut short leaves them, named as not removed yet), and only under
    its own folder (``reports/sw-10`` beside ``reports/sw-1`` is kept)."""
    _, b = reports
    s3.put_object(Bucket=BUCKET, Key=f"{KEY}/plots/old.svg", Body=b"<svg/>")  # the earlier push's
    s3.put_object(Bucket=BUCKET, Key=f"{KEY}0/results.json", Body=b"{}")  # another report's folder
    code, res = _pull(tmp_path, [])
    left = f"{URI}/plots/old.svg: not listed in the manifest (left by an earlier push: pushing the report again removes it)"
    assert code == 1 and res["problems"] == [left], res
    _push_cut_at_results(s3, b, monkeypatch)
    assert f"{KEY}/plots/old.svg" in _keys(s3, KEY)
    code, res = _pull(tmp_path, [])
    assert code == 1 and res["incomplete"] is True, res
    assert "not there yet: results.json, manifest.json" in res["problems"][0], res
    assert "plots/old.svg" in res["problems"][0], res

    put_dir(b, URI)
    assert _keys(s3, KEY) == [f"{KEY}/manifest.json", f"{KEY}/report.html", f"{KEY}/results.json",
                              f"{KEY}0/results.json"]
    code, res = _pull(tmp_path, [])
    assert code == 0, res


def test_a_push_cut_before_its_first_file_pulls_the_earlier_report_with_a_note(s3, reports, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Only ``PUSHING`` there: the earlier report is complete and verifies, and is pulled, with a note naming the
    push of another report over it that has not ended."""
    a, b = reports
    _push_cut_at_results(s3, b, monkeypatch, "report.html")
    code, res = _pull(tmp_path, [])
    assert code == 0, res
    assert (tmp_path / "out" / "sw-1" / "manifest.json").read_bytes() == (a / "manifest.json").read_bytes()
    have, rid = (json.loads((r / "manifest.json").read_text())["report_id"] for r in (a, b))
    assert res["notes"][-1] == (f"{URI}: a push of report {rid} over this one was cut short or is running (its "
                                f"manifest is not there yet); the report pulled is the complete one there before it, "
                                f"{have}"), res
    assert not (tmp_path / "out" / "sw-1" / ".manifest.pushing.json").exists()
