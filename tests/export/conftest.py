"""Fixtures of the export tests: simulator traces, traces with personal data, a real S3 API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MODEL_STACK, record_sample_run

ROOT = Path(__file__).resolve().parents[2]
PII = {"email": "jane.doe@example.org", "phone": "+44 20 7946 0958", "card": "4111 1111 1111 1111",
       "aws": "AKIAIOSFODNN7EXAMPLE", "ip": "203.0.113.77"}


@pytest.fixture(scope="session")
def sim_traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulator's smoke collection (32 episodes, 4 families, every event type)."""
    from tracebridge.config import load_config
    from tracebridge.sim.collect import collect
    from tracebridge.sim.config import CollectConfig

    out = tmp_path_factory.mktemp("sim") / "traces"
    collect(load_config(CollectConfig, ROOT / "configs/collect/smoke.yaml", ["workers=1"]), str(out))
    return out


def record_pii_run(root: Path, redactor: Any = None, goal: str = "send the report", text: str | None = None) -> str:
    """A complete run whose payloads hold personal data (redacted at capture when ``redactor``)."""
    from tracebridge.capture.recorder import Recorder

    text = text or " ".join(PII.values())
    with Recorder(root, goal=goal, model_stack=MODEL_STACK, runtime_config={"max_steps": 2},
                  source={"kind": "runtime"}, strict=True, redactor=redactor) as run:
        pi = run.emit("planner_input", role="planner", payload={"goal": f"{goal}: {text}", "tool_mask": ["mail"]})
        po = run.emit("planner_output", role="planner", parent=pi,
                      payload={"plan": [{"index": 0, "description": f"mail {PII['email']}", "tool": "mail",
                                         "args": {"to": PII["email"]}}], "rationale": "one step"})
        wi = run.emit("worker_input", role="worker", parent=po,
                      payload={"plan_step": {"index": 0, "description": "mail it", "tool": "mail"},
                               "allowed_tools": ["mail"]})
        act = run.emit("worker_action", role="worker", payload={"action": "tool_call", "tool": "mail",
                                                                 "args": {"to": PII["email"]}})
        run.emit("worker_tool_call", role="worker", parent=act,
                 payload={"call_id": "c1", "tool": "mail", "args": {"to": PII["email"], "body": text}})
        wo = run.emit("worker_tool_result", role="worker", payload={"call_id": "c1", "ok": True, "output": text})
        run.emit("worker_output", role="worker", parent=wo, payload={"result": "sent"})
        vi = run.emit("verifier_input", role="verifier", parent=wi,
                      payload={"plan_progress": {"completed": 1, "total": 1}, "evidence": [text]})
        run.emit("verifier_output", role="verifier", parent=vi, payload={"verdict": "end", "feedback": "sent"})
        run.emit("episode_end", role="orchestrator", payload={"success": True, "outcome": "sent"})
        return run.run_id


@pytest.fixture
def mixed_traces(tmp_path: Path) -> Path:
    """Two clean sample runs (one an exact behavioural duplicate), one of another goal, one with
    unredacted personal data and one broken run."""
    root = tmp_path / "traces"
    record_sample_run(root)
    record_sample_run(root)  # duplicate behaviour of the first
    record_sample_run(root, goal="count words in words.txt", fail_tool=False)
    record_pii_run(root)
    broken = root / record_sample_run(root, goal="a broken one")
    with (broken / "events.jsonl").open("a") as fh:
        fh.write("{not json\n")
    return root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serving(name: str, argv: list[str], probe: str, env: dict[str, str] | None = None) -> Iterator[None]:
    """Run the console script ``name`` of this venv with ``argv`` for the block, once ``probe`` (a URL)
    answers; an HTTP error is an answer (a server checking credentials refuses it)."""
    exe = Path(sys.executable).with_name(name)
    proc = subprocess.Popen([str(exe), *argv], env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(probe, timeout=1)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{name} did not start") from None
                time.sleep(0.2)
        yield
    finally:
        proc.kill()  # in-memory servers: nothing to save; SIGTERM took them ~1 s to stop (moto's werkzeug)
        proc.wait(timeout=10)


@contextmanager
def moto_server(env: dict[str, str] | None = None) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 for the block (``env``: extra variables of its process, e.g.
    ``INITIAL_NO_AUTH_ACTION_COUNT=0`` to check credentials); yields its URL once it answers."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with _serving("moto_server", ["-H", "127.0.0.1", "-p", str(port)], url, env):
        yield url


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """A real S3 API (moto's server) on 127.0.0.1 with one bucket; credentials via the environment."""
    with moto_server() as url:
        yield url


def aws_env(monkeypatch: pytest.MonkeyPatch, url: str, key: str = "testing", secret: str = "testing") -> None:
    """S3 credentials and the endpoint ``url`` in the environment, as users give them (never in configs);
    no ``AWS_PROFILE``."""
    for k, v in {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_ENDPOINT_URL": url}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def s3_env(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Credentials and endpoint in the environment (never in configs) and a fresh bucket."""
    import uuid

    import boto3

    aws_env(monkeypatch, s3_server)
    bucket = f"tb-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", region_name="us-east-1", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    return bucket


GCS_BUCKET = "tb-gcs"


@contextmanager
def gcs_emulator() -> Iterator[str]:
    """gcp-storage-emulator's GCS JSON API on 127.0.0.1 for the block, in memory, holding the bucket
    ``GCS_BUCKET``; yields its URL (what ``STORAGE_EMULATOR_HOST`` takes) once it answers."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with _serving("gcp-storage-emulator", ["start", "--host", "127.0.0.1", "--port", str(port), "--in-memory",
                                           "--default-bucket", GCS_BUCKET], f"{url}/storage/v1/b/{GCS_BUCKET}"):
        yield url


@pytest.fixture(scope="module")
def gcs_server() -> Iterator[str]:
    """A real GCS JSON API (the emulator) on 127.0.0.1 with the bucket ``GCS_BUCKET``."""
    with gcs_emulator() as url:
        yield url


@pytest.fixture
def gcs_env(gcs_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The emulator in the environment (``STORAGE_EMULATOR_HOST``, as gcsfs reads it), no Google credentials
    (gcsfs falls back to anonymous; ``NO_GCE_CHECK`` and a closed metadata port spare its probes of a metadata server,
    ~2 s each), and a fresh
    prefix in the bucket: ``gs://tb-gcs/<prefix>``."""
    import uuid

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server)
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    for k in ("GCE_METADATA_HOST", "GCE_METADATA_IP"):  # google-auth's own probe: a closed port answers at once
        monkeypatch.setenv(k, "127.0.0.1:1")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    return f"gs://{GCS_BUCKET}/t{uuid.uuid4().hex[:10]}"


def all_bytes(path: Path) -> bytes:
    """Every file of a folder, concatenated (to grep a bundle for leaked values)."""
    return b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())


os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
