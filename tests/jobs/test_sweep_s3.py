"""``jobs/sweep.py`` with Tune's and Ray Train's storage on a real S3 API (moto on loopback), reached
through ``tune_storage``'s bounded filesystem (``storage_io``): the experiment state, the Train run and
the checkpoints land in the bucket, and the same job again resumes the run from there
(``Tuner.restore`` with the filesystem) without training the finished trial again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sweep.test_publish import free_port, start_moto

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "tests" / "data" / "train_views"
pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def moto_bucket():
    import boto3

    port = free_port()
    moto = start_moto(port)
    url = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=url, aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    client.create_bucket(Bucket="tb-sweeps")
    try:
        yield url, client
    finally:
        moto.kill()  # in memory, nothing to save: SIGTERM took it ~1 s to stop
        moto.wait(10)


def run_job(url: str, work: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AWS_"))}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_ENDPOINT_URL=url, LITELLM_LOCAL_MODEL_COST_MAP="True", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "jobs/sweep.py", "configs/sweep/smoke.yaml", f"bundle={BUNDLE}",
                           "storage=s3://tb-sweeps/sweeps", f"work_dir={work}", "variants=[baseline]",
                           "resources.use_train=true", "overrides.train.max_steps=2", "overrides.train.save_steps=0",
                           "storage_io.request_timeout_s=10", "storage_io.retry.attempts=2"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=500, check=False)


def test_sweep_on_s3_writes_through_the_bounded_filesystem_and_resumes_from_it(moto_bucket, tmp_path):
    url, client = moto_bucket
    first = run_job(url, tmp_path / "work")
    assert first.returncode == 0, first.stderr[-4000:]
    s1 = json.loads(first.stdout.strip().splitlines()[-1])
    assert s1["trials"] == 1 and s1["failures"] == []
    pages = client.get_paginator("list_objects_v2").paginate(Bucket="tb-sweeps", Prefix=f"sweeps/{s1['sweep_id']}/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    sid = f"sweeps/{s1['sweep_id']}"
    assert f"{sid}/tuner.pkl" in keys  # Tune's experiment state, for Tuner.restore
    assert any(k.startswith(f"{sid}/_train/") for k in keys)  # the trial's Ray Train run
    assert any("/checkpoint_" in k and k.endswith("tracebridge_checkpoint.json") for k in keys)
    record = client.get_object(Bucket="tb-sweeps", Key=f"sweeps/sweeps/{s1['sweep_id']}.json")["Body"].read()
    assert json.loads(record)["sweep_id"] == s1["sweep_id"]  # the config --resume of another one compares with

    again = run_job(url, tmp_path / "work")
    assert again.returncode == 0, again.stderr[-4000:]
    s2 = json.loads(again.stdout.strip().splitlines()[-1])
    assert f"resuming sweep {s1['sweep_id']} from s3://tb-sweeps/{sid}" in again.stderr
    assert s2["sweep_id"] == s1["sweep_id"] and s2["trials"] == 1 and s2["failures"] == []
    assert s2["attempts"] == s1["attempts"] == {next(iter(s1["attempts"])): 1}  # not trained again
