"""The jobs' write probe of their storage (``storage_problem``), against a real S3 API (moto on 127.0.0.1): it left
its probe object there when it failed after the store took the write. A write whose answer was lost (a proxy passes
the PUT on and drops the answer) was tried again and again, each try leaving the probe, and never removed; now one
try removes it. A store that takes writes but refuses deletes (an IAM policy without ``s3:DeleteObject``) was said as
"cannot write there", the probe left unnamed; now the problem says the removal was refused and names the probe."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import boto3
import pytest

from tests.export.conftest import aws_env, moto_server
from tests.jobs.test_report_push import CutReportsProxy
from tracebridge.export.config import RetryConfig, StorageConfig
from tracebridge.sweep.config import SweepConfig
from tracebridge.sweep.publish import storage_problem

BUCKET = "tb-probe"


def _keys(url: str) -> list[str]:
    s3 = boto3.session.Session().client("s3", endpoint_url=url, region_name="us-east-1")  # the credentials set now
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def _cfg(attempts: int) -> SweepConfig:
    return SweepConfig(storage=f"s3://{BUCKET}/runs", push=RetryConfig(attempts=attempts, backoff_s=0.01),
                       storage_io=StorageConfig(request_timeout_s=5))


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with moto_server() as url:
        aws_env(monkeypatch, url)
        boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield url


def test_a_probe_whose_write_answer_was_lost_is_removed(s3: str, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = CutReportsProxy(int(s3.rsplit(":", 1)[1]), re.compile(rb"PUT /[^ ]*/\.write-probe-"), deliver=True)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.port}")
    try:
        problem = storage_problem(_cfg(attempts=2))
    finally:
        proxy.close()
    assert problem is not None and problem[1] == 3 and "cannot write there" in problem[0], problem
    assert proxy.cut >= 2, proxy.cut  # each try's PUT reached the store
    assert _keys(s3) == []


def test_a_store_refusing_the_removal_names_the_probe_left_there(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto checks credentials after its first 5 requests: the bucket, the user, its policy, its key, the probe's PUT
    with moto_server({"INITIAL_NO_AUTH_ACTION_COUNT": "5"}) as url:
        kw = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
        boto3.client("s3", **kw).create_bucket(Bucket=BUCKET)
        iam = boto3.client("iam", **kw)
        iam.create_user(UserName="writer")
        iam.put_user_policy(UserName="writer", PolicyName="no-delete", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*",
                                                    "Action": ["s3:PutObject", "s3:GetObject", "s3:ListBucket"]}]}))
        key = iam.create_access_key(UserName="writer")["AccessKey"]
        aws_env(monkeypatch, url, key["AccessKeyId"], key["SecretAccessKey"])
        problem = storage_problem(_cfg(attempts=3))
        left = _keys(url)
    assert len(left) == 1 and left[0].startswith("runs/.write-probe-"), left
    assert problem is not None and problem[1] == 2, problem
    assert problem[0].startswith(f"storage=s3://{BUCKET}/runs: wrote there but cannot remove what it wrote"), problem
    assert f"s3://{BUCKET}/{left[0]} is left there" in problem[0] and "DeleteObject" not in problem[0], problem


@pytest.mark.parametrize("where", ["local", "s3"])
def test_the_probes_of_killed_jobs_are_removed_once_stale(where: str, request: pytest.FixtureRequest,
                                                          tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A job killed between its probe's write and removal left the probe for good; the next probe removes those
    older than an hour (the age given here: 0 s on S3, whose objects cannot be dated back), and keeps newer ones."""
    import os
    import time

    if where == "local":
        cfg = SweepConfig(storage=str(tmp_path / "runs"))
        (tmp_path / "runs").mkdir()
        for name, age in ((".write-probe-old", 7200), (".write-probe-new", 60), (".write-probes.txt", 7200)):
            (tmp_path / "runs" / name).write_bytes(b"")
            os.utime(tmp_path / "runs" / name, (time.time() - age, time.time() - age))
        assert storage_problem(cfg) is None
        assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [".write-probe-new", ".write-probes.txt"]
        return
    from tracebridge.sweep.publish import remove_stale_probes

    url = request.getfixturevalue("s3")
    s3 = boto3.session.Session().client("s3", endpoint_url=url, region_name="us-east-1")
    for key in ("runs/.write-probe-old", "runs/x/.write-probe-deeper", "runs/report.json"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"")
    time.sleep(1.1)  # S3 dates objects to the second
    assert remove_stale_probes(_cfg(1), max_age_s=1.0) == [f"s3://{BUCKET}/runs/.write-probe-old"]
    assert sorted(_keys(url)) == ["runs/report.json", "runs/x/.write-probe-deeper"]
