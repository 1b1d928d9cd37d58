"""Ray Jobs API access (``JobSubmissionClient``): connect with the cluster's token, submit with a
``runtime_env`` (working_dir, env vars, excludes, image or pip), status, logs (polled, so a
follow works through any proxy), stop, list our jobs, and wait with progress and a deadline (and a limit
on how long a job may stay PENDING, with what it asked for next to what the cluster has).

Every request waits at most ``request_timeout_s`` (the SDK sets no timeout: a head that accepts the
connection and never answers would hang every command). Waiting on a job is many such requests, so a
long job is never cut by it; ``wait`` gives up only when its polls go unanswered for ``wait_patience_s``.

The token travels only in the ``Authorization`` header of this process; it is read from the
local head's 0600 file, ``token_file`` or the environment variable named by ``token_env``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tracebridge.cluster.config import ClusterConfig, expand, job_env

log = logging.getLogger(__name__)

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


class ClusterError(RuntimeError):
    """The cluster refused us (token, job spec) or a job is unknown; ``ClusterUnreachable`` when it
    could not be reached at all."""


class ClusterUnreachable(ClusterError):
    """Nothing answered at the head's address (connection refused or reset, a timeout): a later try
    may work, unlike a refused token or a bad job spec."""


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means the head did not answer: the SDK raises the builtin ConnectionError at
    connect, and ``requests``' connection and timeout errors on later calls."""
    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        import requests

        kinds += [requests.exceptions.ConnectionError, requests.exceptions.Timeout]
    except ImportError:
        pass
    return isinstance(exc, tuple(kinds))


def cluster_error(what: str, exc: BaseException) -> ClusterError:
    """The ``ClusterError`` for ``exc`` raised while doing ``what``: ``ClusterUnreachable`` when
    nothing answered."""
    text = f"{what}: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
    if _unreachable(exc):
        hint = " within the cluster's request_timeout_s" if "timed out" in str(exc).lower() else ""
        return ClusterUnreachable(f"{text} (the Ray head did not answer{hint}; try again when it is up)")
    return ClusterError(text)


def read_token(cfg: ClusterConfig, token_file: str | None = None) -> str | None:
    """The Ray token for ``cfg``: the given file, ``cfg.token_file``, or ``$<cfg.token_env>``."""
    for f in (token_file, cfg.token_file):
        if f and expand(f).is_file():
            return expand(f).read_text().strip()
    return os.environ.get(cfg.token_env) if cfg.token_env else None


@functools.cache
def _bounded_client() -> type:
    """``JobSubmissionClient`` with a timeout on each request (the SDK passes none to ``requests``)."""
    from ray.job_submission import JobSubmissionClient

    class BoundedClient(JobSubmissionClient):  # type: ignore[misc]
        def __init__(self, address: str, timeout_s: float, **kwargs: Any) -> None:
            self.timeout_s = timeout_s  # set first: the constructor already asks the head its version
            super().__init__(address, **kwargs)

        def _do_request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
            # (connect, read): each socket wait, not the whole transfer, so a big upload or log still gets through
            kwargs.setdefault("timeout", self.timeout_s)
            return super()._do_request(method, endpoint, **kwargs)

    return BoundedClient


def connect(address: str, token: str | None, timeout_s: float = 30.0) -> Any:
    """A ``JobSubmissionClient`` for ``address`` sending ``token``, each of whose requests waits at
    most ``timeout_s`` to connect or for the next bytes of the answer.

    Raises:
        ClusterUnreachable: nothing answered at ``address`` (refused, reset, or silent for ``timeout_s``).
        ClusterError: the token is missing or refused, or the address is not a Jobs API.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        return _bounded_client()(address, timeout_s, headers=headers)
    except Exception as exc:  # ConnectionError, AuthenticationError, RuntimeError — all "cannot use it"
        raise cluster_error(address, exc) from exc


def runtime_env(cfg: ClusterConfig, working_dir: Path) -> dict[str, Any]:
    """The job's runtime_env: the project folder (minus excludes and .gitignore'd paths), the
    thread/offline env vars, and the configured image or pip requirements."""
    env: dict[str, Any] = {"working_dir": str(working_dir), "excludes": list(cfg.excludes),
                           "env_vars": {k: str(v) for k, v in job_env(cfg).items()}}
    if cfg.image:
        env["image_uri"] = cfg.image
    if cfg.pip:
        env["pip"] = list(cfg.pip)
    return env


def entrypoint(cfg: ClusterConfig, script: str, args: list[str]) -> str:
    """``python jobs/<script> ARGS`` with the right interpreter: this venv's for the local head,
    the image's ``python`` for remote clusters (or ``cfg.python``)."""
    python = cfg.python or (sys.executable if cfg.kind == "local" else "python")
    return shlex.join([python, script, *args])


def submit(client: Any, entry: str, env: dict[str, Any], submission_id: str, metadata: dict[str, str],
           cfg: ClusterConfig) -> bool:
    """Submit a job; ``False`` when ``submission_id`` already exists (a retried submit never starts
    a second run).

    Raises:
        ClusterError: the cluster refused the job for another reason.
    """
    try:
        client.submit_job(entrypoint=entry, runtime_env=env, submission_id=submission_id, metadata=metadata,
                          entrypoint_num_cpus=cfg.entrypoint_num_cpus or None,
                          entrypoint_num_gpus=cfg.entrypoint_num_gpus or None,
                          entrypoint_resources=dict(cfg.entrypoint_resources) or None)
    except Exception as exc:  # the SDK raises RuntimeError with the server's traceback
        if "already exists" in str(exc):
            log.info("job %s already exists; not submitting it again", submission_id)
            return False
        raise cluster_error(f"submit {submission_id}", exc) from exc
    return True


NUMBER_KEYS = ("attempt", "trials", "trained_trials")  # job metadata Ray keeps as strings that are whole numbers


def typed_metadata(meta: dict[str, str] | None) -> dict[str, Any]:
    """A job's metadata with its whole numbers (``attempt``, ``trials``, ``trained_trials``) as integers: Ray keeps metadata
    as strings, and ``list``/``status --json`` gave ``"attempt": "1"``, which a script comparing it to a
    number never matched. A value that is not a whole number (another tool's job) stays as it is."""
    out: dict[str, Any] = dict(meta or {})
    for k in NUMBER_KEYS:
        if isinstance(out.get(k), str) and out[k].strip().isdigit():
            out[k] = int(out[k])
    return out


def job_info(client: Any, submission_id: str) -> dict[str, Any]:
    """Status, message, times and metadata of a job.

    Raises:
        ClusterError: no such job.
    """
    try:
        info = client.get_job_info(submission_id)
    except Exception as exc:
        raise cluster_error(f"job {submission_id}", exc) from exc
    return {"submission_id": info.submission_id, "status": str(info.status.value if hasattr(info.status, "value")
                                                                  else info.status),
            "message": info.message, "entrypoint": info.entrypoint, "metadata": typed_metadata(info.metadata),
            "start_time": info.start_time, "end_time": info.end_time, "driver_exit_code": info.driver_exit_code}


def list_jobs(client: Any, everything: bool = False) -> list[dict[str, Any]]:
    """Jobs on the cluster (ours only, i.e. with tracebridge metadata, unless ``everything``).

    Raises:
        ClusterError: the cluster did not list them (``ClusterUnreachable``: it did not answer).
    """
    try:
        jobs = client.list_jobs()
    except Exception as exc:
        raise cluster_error("list jobs", exc) from exc
    out = []
    for j in jobs:
        meta = dict(j.metadata or {})
        if j.submission_id and (everything or "sweep_id" in meta):
            out.append({"submission_id": j.submission_id, "status": str(getattr(j.status, "value", j.status)),
                        "sweep_id": meta.get("sweep_id"), "attempt": typed_metadata(meta).get("attempt"),
                        "start_time": j.start_time, "end_time": j.end_time})
    return sorted(out, key=lambda j: j.get("start_time") or 0)


def logs(client: Any, submission_id: str) -> str:
    """The job's log text so far.

    Raises:
        ClusterError: the cluster did not return the logs (e.g. no such job).
    """
    try:
        return client.get_job_logs(submission_id)
    except Exception as exc:
        raise cluster_error(f"logs of {submission_id}", exc) from exc


def cluster_status(client: Any) -> dict[str, Any] | None:
    """The autoscaler's status of the cluster (``/api/cluster_status``: node types, resource usage), or None
    when the dashboard gives none (no answer, no autoscaler report yet)."""
    try:
        resp = client._do_request("GET", "/api/cluster_status")
        data = resp.json().get("data") or {} if resp.status_code == 200 else {}
    except Exception:  # noqa: BLE001 - a status we cannot read only leaves it out
        return None
    return data.get("cluster_status") or data.get("clusterStatus")


def cluster_resources(status: dict[str, Any] | None) -> dict[str, dict[str, float]]:
    """``{resource: {"total", "free"}}`` of the cluster from its ``cluster_status`` (memory in GiB; the
    per-node and object-store entries left out); empty when it is unknown."""
    usage = ((status or {}).get("loadMetricsReport") or {}).get("usage") or {}
    out = {}
    for k, pair in usage.items():
        if k.startswith("node:") or k == "objectStoreMemory" or len(pair) != 2:
            continue
        used, total = (float(x) / (2**30 if k == "memory" else 1) for x in pair)
        out[k] = {"total": round(total, 2), "free": round(total - used, 2)}
    return out


def driver_request(cfg: ClusterConfig) -> dict[str, float]:
    """What a job's driver asks the cluster for (``entrypoint_*`` keys of ``cfg``): its non-zero resources."""
    req = {"CPU": cfg.entrypoint_num_cpus, "GPU": cfg.entrypoint_num_gpus, **cfg.entrypoint_resources}
    return {k: float(v) for k, v in req.items() if v}


def job_summary(text: str) -> dict[str, Any] | None:
    """The summary a sweep job prints as its last JSON line (``{"sweep_id": ..., "failures": [...]}``,
    jobs/sweep.py and jobs/eval.py), or None when its log has none (it ended before the summary)."""
    for line in reversed(text.splitlines()):
        if line.startswith('{"sweep_id"'):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def stop(client: Any, submission_id: str) -> bool:
    """Ask the job to stop (its driver gets SIGINT, so Tune saves its state for a resume)."""
    try:
        return bool(client.stop_job(submission_id))
    except Exception as exc:
        raise cluster_error(f"stop {submission_id}", exc) from exc


class PendingWatch:
    """How long a job has been PENDING (its driver not started) while we wait on it: a progress line every
    ``every_s`` through ``on_log``, and a stop reason once it passed ``timeout_s`` (0 = never)."""

    def __init__(self, submission_id: str, timeout_s: float, on_log: Callable[[str], None] | None,
                 every_s: float = 30.0) -> None:
        self.submission_id, self.timeout_s, self.on_log, self.every_s = submission_id, timeout_s, on_log, every_s
        self.since = time.monotonic()
        self.said = -every_s
        self.started = False  # seen in a status other than PENDING

    def check(self, info: dict[str, Any]) -> str | None:
        """The reason to stop the job now (it stayed PENDING past ``timeout_s``), else None."""
        if info["status"] != "PENDING":
            self.started = True
            return None
        waited = time.monotonic() - self.since
        limit = f"stopped at {self.timeout_s:g}s (cluster pending_timeout_s)" if self.timeout_s else "no limit of ours"
        if self.on_log is not None and waited - self.said >= self.every_s:
            self.said = waited
            self.on_log(f"tracebridge: {self.submission_id} PENDING for {waited:.0f}s, its driver not started "
                        f"({limit}): {info.get('message') or ''}\n")
        if self.timeout_s and waited > self.timeout_s:
            return f"never started: PENDING for {waited:.0f}s (pending_timeout_s={self.timeout_s:g})"
        return None

    def never_started(self, info: dict[str, Any]) -> bool:
        """Whether the job ended without its driver starting: failed by Ray (RAY_JOB_START_TIMEOUT_SECONDS, a
        runtime_env that could not be set up) while we only saw it PENDING."""
        return not self.started and info["status"] == "FAILED" and info.get("driver_exit_code") is None


def wait(client: Any, submission_id: str, poll_s: float = 2.0, on_log: Callable[[str], None] | None = None,
         deadline: float | None = None, should_stop: Callable[[], str | None] | None = None,
         patience_s: float = 300.0, pending_timeout_s: float = 0.0) -> dict[str, Any]:
    """Poll until the job is terminal, streaming new log text to ``on_log``.

    Each poll is a few requests, each bounded by the client's timeout; a poll the head does not
    answer is tried again, so a slow moment of the head does not end the wait of a long job.

    Args:
        deadline: ``time.time()`` after which the job is stopped (status then says why).
        should_stop: called every poll; a non-empty return is a reason to stop the job now.
        patience_s: give up when the head has not answered a poll for this long.
        pending_timeout_s: when the job is still PENDING this long after the wait began (0 = no limit),
            ask it to stop and return at once (Ray keeps a stop of a driver it has not placed until it
            places it, listing the job PENDING meanwhile); while it is PENDING, a progress line goes to
            ``on_log`` every 30 s.

    Returns:
        The final ``job_info`` (the last PENDING one when ``pending_timeout_s`` ended the wait) plus
        ``"stopped_because"`` when we stopped it, and ``"never_started"``: True when its driver never
        started (``PendingWatch.never_started``).

    Raises:
        ClusterUnreachable: no poll answered for ``patience_s`` (the job may still be running).
        ClusterError: the cluster answered with an error (e.g. no such job).
    """
    seen = 0
    reason: str | None = None
    stopped = False
    answered = time.monotonic()
    pending = PendingWatch(submission_id, pending_timeout_s, on_log)
    while True:
        try:
            info = job_info(client, submission_id)
            answered = time.monotonic()
            if on_log is not None:
                text = logs(client, submission_id)
                if len(text) > seen:
                    on_log(text[seen:])
                    seen = len(text)
            if info["status"] in TERMINAL:
                if reason:
                    info["stopped_because"] = reason
                return {**info, "never_started": pending.never_started(info)}
            if reason is None and (never := pending.check(info)):
                # Ray cannot stop a driver it has not placed: the stop waits in the job supervisor's queue and
                # ends the job as soon as it is placed; Ray lists it PENDING until then (or until
                # RAY_JOB_START_TIMEOUT_SECONDS fails it), so waiting here for STOPPED would not end
                log.warning("stopping %s: %s", submission_id, never)
                stop(client, submission_id)
                return {**info, "stopped_because": never, "never_started": True}
            if reason is None:
                reason = ("deadline reached" if deadline and time.time() > deadline else None) or \
                    (should_stop() if should_stop else None)
            if reason and not stopped:
                log.warning("stopping %s: %s", submission_id, reason)
                stop(client, submission_id)
                stopped = True
        except ClusterUnreachable as exc:
            silent = time.monotonic() - answered
            if silent >= patience_s:
                raise ClusterUnreachable(f"{exc}; no answer for {silent:.0f}s while waiting on {submission_id} "
                                         f"(wait_patience_s={patience_s:g}); the job may still be running") from exc
            log.warning("%s; polling again (%.0fs without an answer, giving up at %gs)", exc, silent, patience_s)
        time.sleep(poll_s)
