"""The embedded local Ray head: ``ray start --head --block`` on 127.0.0.1 from this venv, in a
temp dir of ours, with token authentication on (``RAY_AUTH_MODE=token``, a 0600 token file),
reused while it runs (a state file under ``state_dir``) and stopped by its process group, never
by ``ray stop`` (which would stop every Ray on the machine).

Ray's GCS, raylet and object manager still listen on all interfaces (only the dashboard binds to
``dashboard_host``); the token is what protects them.

A head that cannot start is a ``HeadSetupError`` (a ``ClusterError``: exit 2) when a retry would fail
the same way: no ``ray`` executable, the configured ``dashboard_port`` taken, a state dir that cannot
be written, a broken Ray install. It is a ``HeadStartFailed`` (a ``ClusterUnreachable``: exit 3) when
it exited for another reason or did not answer within ``start_timeout_s`` (a busy machine, a port we
picked and another process took first). Its log is kept in ``<state_dir>/failed-start/``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from tracebridge.cluster.client import ClusterError, ClusterUnreachable
from tracebridge.cluster.config import ClusterConfig, expand
from tracebridge.pool_workers import pid_alive

log = logging.getLogger(__name__)
# In a failed head's log: a set-up problem that a retry would meet again (the configured dashboard port
# taken is told apart by its number: the other ports are picked free, so another process took one first).
_SETUP_MARKERS = ("ModuleNotFoundError", "ImportError", "Permission denied", "No such option", "Usage: ray")
_PORT_TAKEN = ("already occupied", "already in use")


class HeadSetupError(ClusterError):
    """The local head cannot start here until something is fixed (exit 2)."""


class HeadStartFailed(ClusterUnreachable):
    """The local head exited or did not answer in time for a reason a later try may not meet (exit 3)."""


@dataclass
class HeadInfo:
    """A running local head: where it answers and how to stop it."""

    address: str
    gcs_address: str
    pid: int
    temp_dir: str
    token_file: str
    log_file: str
    started: bool = True

    def to_dict(self) -> dict[str, object]:
        """The fields as a plain dict (what ``head.json`` holds)."""
        return asdict(self)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_token(path: Path) -> str:
    """The token in ``path``, created (random, mode 0600) if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or not path.read_text().strip():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def head_env(token_file: Path) -> dict[str, str]:
    """The head's environment: token auth from our file, this venv first on PATH (so a job's
    plain ``python`` is ours), one thread per process, no usage stats."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_file), RAY_USAGE_STATS_ENABLED="0",
               OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"), LITELLM_LOCAL_MODEL_COST_MAP="True",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    return env


def _answers(address: str, token: str | None, timeout: float = 2.0) -> int | None:
    """HTTP status of the Jobs API (None when nothing answers)."""
    req = urllib.request.Request(f"{address}/api/jobs/")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def state_path(cfg: ClusterConfig) -> Path:
    """Where the running local head is recorded: ``<state_dir>/head.json``."""
    return expand(cfg.state_dir) / "head.json"


def running_head(cfg: ClusterConfig) -> HeadInfo | None:
    """The head recorded in ``state_dir`` if its process is alive and its Jobs API answers."""
    path = state_path(cfg)
    if not path.is_file():
        return None
    try:
        info = HeadInfo(**{**json.loads(path.read_text()), "started": False})
    except (ValueError, TypeError):
        return None
    token = Path(info.token_file).read_text().strip() if Path(info.token_file).is_file() else None
    if pid_alive(info.pid) and _answers(info.address, token) == 200:
        return info
    return None


def ray_executable(cfg: ClusterConfig) -> str:
    """The ``ray`` that starts the head: ``cfg.ray_command``, else this venv's, else ``ray`` on PATH.

    Raises:
        HeadSetupError: there is no such executable.
    """
    if cfg.ray_command:
        found = shutil.which(str(expand(cfg.ray_command)))
        if not found:
            raise HeadSetupError(f"ray_command={cfg.ray_command}: no such executable; name the `ray` of the "
                                 "environment that has Ray installed, or '' for this venv's")
        return found
    venv = Path(sys.executable).parent / "ray"
    found = str(venv) if venv.exists() else shutil.which("ray")
    if not found:
        raise HeadSetupError(f"no `ray` executable in {venv.parent} or on PATH: pip install 'ray[default]' "
                             "into this venv, or set ray_command")
    return found


def _check_port(cfg: ClusterConfig) -> None:
    """Refuse a configured ``dashboard_port`` that another process holds, before starting anything."""
    if not cfg.dashboard_port:
        return
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free to Ray too
        try:
            s.bind((cfg.dashboard_host, cfg.dashboard_port))
        except OSError as exc:
            raise HeadSetupError(f"dashboard_port={cfg.dashboard_port}: {cfg.dashboard_host}:{cfg.dashboard_port} "
                                 f"cannot be bound ({exc.strerror or exc}): another process uses it; stop it, or "
                                 "use another port or 0 (a free one)") from exc


def _command(cfg: ClusterConfig, ray: str, temp_dir: str, port: int) -> list[str]:
    cmd = [ray, "start", "--head", "--block", "--temp-dir", temp_dir,
           "--node-ip-address", "127.0.0.1", "--port", str(free_port()), "--dashboard-host", cfg.dashboard_host,
           "--dashboard-port", str(port), "--ray-client-server-port", str(free_port()),
           "--dashboard-agent-listen-port", str(free_port()), "--include-dashboard", "true",
           "--disable-usage-stats"]
    if cfg.num_cpus:
        cmd += ["--num-cpus", str(cfg.num_cpus)]
    if cfg.num_gpus >= 0:
        cmd += ["--num-gpus", str(cfg.num_gpus)]
    return cmd


def start_head(cfg: ClusterConfig) -> HeadInfo:
    """Reuse the running local head, or start one and wait until its Jobs API answers.

    Raises:
        HeadSetupError: no ``ray`` executable, the configured dashboard port taken, an unwritable
            state dir, or a head whose log shows a set-up problem (see the module docstring).
        HeadStartFailed: the head exited for another reason or did not answer within ``start_timeout_s``.
    """
    from filelock import FileLock

    state, token_file = state_path(cfg), state_path(cfg).parent / "auth_token"
    try:
        state.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(state) + ".lock")
        lock.acquire()
    except OSError as exc:
        raise HeadSetupError(f"state_dir={cfg.state_dir}: cannot hold the head's state ({exc}); "
                             "point state_dir at a writable folder") from exc
    try:
        found = running_head(cfg)
        if found:
            log.info("reusing the local Ray head at %s", found.address)
            return found
        ray = ray_executable(cfg)
        _check_port(cfg)
        port = cfg.dashboard_port or free_port()
        token = ensure_token(token_file)
        # short path: Ray's socket paths must stay under ~107 bytes
        temp_dir = tempfile.mkdtemp(prefix="tbray-", dir="/tmp" if os.path.isdir("/tmp") else None)
        log_file = Path(temp_dir) / "head.log"
        try:
            with log_file.open("w") as out:
                proc = subprocess.Popen(_command(cfg, ray, temp_dir, port), env=head_env(token_file), stdout=out,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:  # not executable, not a program
            shutil.rmtree(temp_dir, ignore_errors=True)
            raise HeadSetupError(f"local Ray head: cannot run {ray}: {exc}; check ray_command") from exc
        address = f"http://127.0.0.1:{port}" if cfg.dashboard_host in ("127.0.0.1", "0.0.0.0", "localhost") \
            else f"http://{cfg.dashboard_host}:{port}"
        info = HeadInfo(address, "", proc.pid, temp_dir, str(token_file), str(log_file))
        deadline = time.time() + cfg.start_timeout_s
        try:
            while _answers(address, token) != 200:
                if proc.poll() is not None or time.time() > deadline:
                    code = proc.poll()
                    kept = _keep_logs(info, state.parent / "failed-start")
                    stop_head(info)
                    raise _start_error(cfg, port, code, kept)
                time.sleep(0.3)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM while it starts: it is recorded nowhere yet, so stop it
            stop_head(info)
            raise
        info.gcs_address = _gcs_address(temp_dir)
        state.write_text(json.dumps(info.to_dict(), indent=2))
        log.info("started a local Ray head at %s (temp dir %s)", address, temp_dir)
        return info
    finally:
        lock.release()


def _keep_logs(info: HeadInfo, dest: Path) -> Path | None:
    """Copy a failed head's output and Ray's session logs to ``dest`` (replacing the last failure's):
    ``stop_head`` removes its temp dir. Returns the kept ``head.log``."""
    try:
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        shutil.copy2(info.log_file, dest / "head.log")
        ray_logs = Path(info.temp_dir) / "session_latest" / "logs"
        if ray_logs.is_dir():
            shutil.copytree(ray_logs, dest / "ray", ignore_dangling_symlinks=True, dirs_exist_ok=True)
    except (OSError, shutil.Error) as exc:
        log.warning("could not keep the failed head's logs in %s: %s", dest, exc)
    return dest / "head.log" if (dest / "head.log").is_file() else None


def _start_error(cfg: ClusterConfig, port: int, code: int | None, kept: Path | None) -> ClusterError:
    """The error of a head that exited with ``code`` (None: still running past ``start_timeout_s``)."""
    text = _tail(kept, 200_000) if kept else ""
    where = f"; log: {kept}" if kept else ""
    tail = "\n".join(text.strip().splitlines()[-15:])
    last = (tail.splitlines() or [""])[-1]
    if code is None:
        return HeadStartFailed(f"local Ray head did not answer within start_timeout_s={cfg.start_timeout_s:g} "
                               f"(stopped it){where}; try again, or raise start_timeout_s on a busy machine"
                               + (f"\n{tail}" if tail else ""))
    # the error that ended it is at the end (earlier lines may hold harmless warnings)
    taken = [line for line in tail.splitlines() if any(m in line for m in _PORT_TAKEN)]
    if cfg.dashboard_port and any(re.search(rf"\b{port}\b", line) for line in taken):
        return HeadSetupError(f"local Ray head exited (code {code}): dashboard_port={port} is in use; use another "
                              f"port or 0 (a free one){where}\n{tail}")
    if not taken and any(m in tail for m in _SETUP_MARKERS):
        return HeadSetupError(f"local Ray head exited (code {code}): {last}; the Ray install or its "
                              f"settings need fixing{where}\n{tail}")
    return HeadStartFailed(f"local Ray head exited (code {code}) while starting: {last or 'no output'}; "
                           f"try again{where}" + (f"\n{tail}" if tail else ""))


def _gcs_address(temp_dir: str) -> str:
    p = Path(temp_dir) / "ray_current_cluster"
    return p.read_text().strip() if p.is_file() else ""


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def stop_head(info: HeadInfo, timeout_s: float = 5.0) -> None:
    """Stop a head we started: SIGTERM to its process group, SIGKILL to what is left after
    ``timeout_s`` (what ``ray stop`` does, but only to our processes; ``ray start --block`` itself
    outlives SIGTERM); remove its temp dir and state file."""
    for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(info.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.time() + wait
        while time.time() < deadline and _group_alive(info.pid):
            _reap(info.pid)
            time.sleep(0.2)
        if not _group_alive(info.pid):
            break
    _reap(info.pid)
    shutil.rmtree(info.temp_dir, ignore_errors=True)
    state = Path(info.token_file).parent / "head.json"
    if state.is_file() and json.loads(state.read_text() or "{}").get("pid") == info.pid:
        state.unlink()
    log.info("stopped the local Ray head (pid %d)", info.pid)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
