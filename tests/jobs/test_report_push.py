"""Storage unreachable at push time, end to end: ``jobs/sweep.py`` runs its sweep with Tune's
storage on a real S3 API (moto on loopback) reached through a TCP proxy that cuts every connection
carrying a request under ``/reports/`` — checkpoints and experiment state get through, the report
push does not. The job retries with backoff, exits 3 naming the storage URI and the error, and
keeps a verified report locally."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.sweep.test_publish import free_port, start_moto
from tracebridge.report import verify_report

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "tests" / "data" / "train_views"
REPORT_REQUEST = re.compile(rb"(GET|PUT|HEAD|POST|DELETE) /[^ ]*/reports/")


class CutReportsProxy:
    """127.0.0.1 TCP proxy to ``target`` that drops any connection sending a report request (one ``pattern``
    matches); with ``deliver``, once it has passed the request on (the store does it, its answer is lost)."""

    def __init__(self, target: int, pattern: re.Pattern[bytes] = REPORT_REQUEST, deliver: bool = False) -> None:
        self.target, self.cut, self.pattern, self.deliver = target, 0, pattern, deliver
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._client, "127.0.0.1", 0), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _client(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            cw.close()
            return

        answered = asyncio.Event()  # set: the request to cut was passed on, so its answer is dropped

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter, inspect: bool) -> None:
            try:
                while data := await r.read(65536):
                    if inspect and self.pattern.search(data):
                        self.cut += 1
                        if not self.deliver:
                            break
                        answered.set()
                    elif not inspect and answered.is_set():
                        break
                    w.write(data)
                    await w.drain()
            except OSError:
                pass
            finally:
                for x in (cw, sw):
                    x.close()

        await asyncio.gather(pipe(cr, sw, True), pipe(sr, cw, False), return_exceptions=True)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def s3_behind_proxy():
    import boto3

    port = free_port()
    moto = start_moto(port)
    proxy = CutReportsProxy(port)
    try:
        boto3.client("s3", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
                     aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket="tb-sweeps")
        yield f"http://127.0.0.1:{proxy.port}", proxy
    finally:
        proxy.close()
        moto.kill()  # in memory, nothing to save: SIGTERM took it ~1 s to stop
        moto.wait(10)


def test_job_exits_3_with_the_report_kept_when_storage_is_unreachable_at_push(s3_behind_proxy, tmp_path):
    url, proxy = s3_behind_proxy
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AWS_"))}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_ENDPOINT_URL=url, AWS_MAX_ATTEMPTS="1", LITELLM_LOCAL_MODEL_COST_MAP="True", OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "jobs/sweep.py", "configs/sweep/smoke.yaml", f"bundle={BUNDLE}",
                          "storage=s3://tb-sweeps/sweeps", f"work_dir={tmp_path}/work", "variants=[baseline]",
                          "overrides.train.max_steps=2", "overrides.train.save_steps=0", "push.attempts=2",
                          "push.backoff_s=0.1"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    assert res.returncode == 3, res.stderr[-4000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["trials"] == 1 and summary["failures"] == [] and "report_uri" not in summary
    uri = f"s3://tb-sweeps/sweeps/reports/{summary['sweep_id']}"
    line = next(x for x in res.stderr.splitlines() if "report not pushed" in x)
    assert f"push of the report to {uri} failed after 2 attempt(s)" in line
    assert summary["report_local"] in line and "retrying in 0.1 s" in res.stderr
    assert verify_report(Path(summary["report_local"])) == [] and proxy.cut >= 2
    # the manifest stamps where the trial ran (this CPU host, through Ray), not the driver's GPUs
    man = json.loads((Path(summary["report_local"]) / "manifest.json").read_text())
    assert man["sweep_id"] == summary["sweep_id"] and man["cluster"]["driver"] == socket.gethostname()
    node = man["cluster"]["nodes"][socket.gethostname()]
    assert node["trials"] == 1 and node["gpus"] == 0.0 and node["node_ip"]
    assert man["gpu_hours"] == 0.0 and man["cost_estimate"]["usd"] == 0.0 and man["cost_estimate"]["source"]
    trial = json.loads((Path(summary["report_local"]) / "results.json").read_text())["trials"][0]
    assert trial["resources"]["source"] == "ray" and trial["resources"]["node_id"]
