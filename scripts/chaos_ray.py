"""Node loss on a real two-node Ray cluster on this machine: the head and a worker node live in
separate network namespaces joined by a veth pair (10.200.0.1/24 ↔ 10.200.0.2/24, namespace-local
addresses), so cluster traffic really crosses a network and the worker joins with the Ray token
(``RAY_AUTH_MODE=token`` on both nodes and the driver); a node offering a wrong token is refused
first (``InvalidAuthToken``). A small Tune sweep of checkpointing
function trials runs with ``FailureConfig`` retries; the head has 1 CPU and the worker 2, so with
3 trials at once at least two start on the worker. Once a worker trial has checkpointed, every
process of the worker node (raylet, GCS client, trial workers) is SIGKILLed; the sweep must still
finish on the head, the lost trials retried from their checkpoints (not step 0): each that had
checkpointed ``--kill-after`` steps must; one killed before its first checkpoint starts at 0.

    python scripts/chaos_ray.py [--trials 4] [--steps 12] [--step-s 0.4] [--kill-after 3]

Needs root (``ip netns add``); exits 77 with the reason when namespaces are not permitted.
Namespaces, veth and processes are removed in every outcome (finally + atexit + SIGTERM). The
last line: ``chaos_ray: trials T, retried R, resumed from checkpoint C, lost L, time S s``.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HEAD_IP, WORKER_IP, GCS_PORT = "10.200.0.1", "10.200.0.2", 6379
SKIP = 77  # "not applicable here" (namespaces not permitted)
# The GCS declares a silent node dead after period × threshold (defaults 3 s × 5 after a 5 s delay).
FAST_NODE_DEATH = {"RAY_health_check_initial_delay_ms": "1000", "RAY_health_check_period_ms": "500",
                   "RAY_health_check_timeout_ms": "1000", "RAY_health_check_failure_threshold": "3"}


def sh(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def netns_problem() -> str | None:
    """Why this machine cannot run the two-namespace cluster (None = it can)."""
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    name = f"tbprobe{os.getpid()}"
    res = sh("ip", "netns", "add", name)
    if res.returncode != 0:
        return f"`ip netns add` not permitted: {res.stderr.strip() or res.returncode}"
    sh("ip", "netns", "del", name)
    return None


class TwoNodes:
    """Two namespaces, a veth pair between them, a Ray head in one and a worker node in the other."""

    def __init__(self, root: Path) -> None:
        from tracebridge.cluster.head import ensure_token, head_env

        tag = os.getpid()
        self.ns = {"head": f"tbh{tag}", "worker": f"tbw{tag}"}
        self.root = root
        self.token_file = root / "auth_token"
        ensure_token(self.token_file)
        self.env = {**head_env(self.token_file), **FAST_NODE_DEATH}
        self.procs: list[subprocess.Popen] = []
        self.closed = False
        self.intruder_refused = ""
        atexit.register(self.close)

    def up(self, head_cpus: int, worker_cpus: int, timeout_s: float = 90.0) -> None:
        """Namespaces and veth, then the head and the worker; returns when both nodes are alive."""
        h, w, veth = self.ns["head"], self.ns["worker"], f"tbv{os.getpid()}"
        for cmd in (["netns", "add", h], ["netns", "add", w],
                    ["link", "add", veth + "h", "type", "veth", "peer", "name", veth + "w"],
                    ["link", "set", veth + "h", "netns", h], ["link", "set", veth + "w", "netns", w],
                    ["-n", h, "addr", "add", f"{HEAD_IP}/24", "dev", veth + "h"],
                    ["-n", w, "addr", "add", f"{WORKER_IP}/24", "dev", veth + "w"],
                    ["-n", h, "link", "set", veth + "h", "up"], ["-n", w, "link", "set", veth + "w", "up"],
                    ["-n", h, "link", "set", "lo", "up"], ["-n", w, "link", "set", "lo", "up"]):
            res = sh("ip", *cmd)
            if res.returncode != 0:
                raise RuntimeError(f"ip {' '.join(cmd)}: {res.stderr.strip()}")
        ray = str(Path(sys.executable).parent / "ray")
        common = ["--block", "--num-gpus", "0", "--object-store-memory", str(80 * 2**20), "--disable-usage-stats"]
        self._start("head", [ray, "start", "--head", "--node-ip-address", HEAD_IP, "--port", str(GCS_PORT),
                             "--num-cpus", str(head_cpus), "--include-dashboard", "false",
                             "--temp-dir", str(self.root / "ray"), *common])
        self.wait_started("head", timeout_s)
        self.intruder_refused = self.join_with_wrong_token(ray, common)
        self._start("worker", [ray, "start", "--address", f"{HEAD_IP}:{GCS_PORT}", "--node-ip-address", WORKER_IP,
                               "--num-cpus", str(worker_cpus), *common])
        self.wait_started("worker", timeout_s)

    def _start(self, node: str, cmd: list[str]) -> None:
        with (self.root / f"{node}.log").open("w") as out:
            self.procs.append(subprocess.Popen(["ip", "netns", "exec", self.ns[node], *cmd], env=self.env, stdout=out,
                                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                               start_new_session=True))

    def wait_started(self, node: str, timeout_s: float) -> None:
        """Until ``ray start`` of ``node`` says the runtime started (its log), or raise with the logs."""
        log, proc = self.root / f"{node}.log", self.procs[-1]
        deadline = time.time() + timeout_s
        while "Ray runtime started" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.time() > deadline:
                logs = "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-1500:]}"
                                 for f in sorted(self.root.glob("*.log")))
                raise RuntimeError(f"Ray {node} did not start (exit {proc.poll()}); logs:\n{logs}")
            time.sleep(0.3)

    def join_with_wrong_token(self, ray: str, common: list[str]) -> str:
        """A node that offers a wrong token must be refused by the head: ``ray start`` from the
        worker's namespace with another token fails (its message returned); whatever it left is killed.

        Raises:
            RuntimeError: the node joined (token auth between nodes is not enforced).
        """
        from tracebridge.cluster.head import ensure_token, head_env

        wrong = self.root / "wrong_token"
        ensure_token(wrong)
        cmd = [ray, "start", "--address", f"{HEAD_IP}:{GCS_PORT}", "--node-ip-address", WORKER_IP, "--num-cpus", "1",
               *[c for c in common if c != "--block"]]
        log = self.root / "wrong_token.log"
        with log.open("w") as out:
            proc = subprocess.Popen(["ip", "netns", "exec", self.ns["worker"], *cmd], env=head_env(wrong), stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 60
        try:  # the GCS answers InvalidAuthToken at once; `ray start` itself would retry for a while
            while proc.poll() is None and "InvalidAuthToken" not in log.read_text(errors="replace") \
                    and time.time() < deadline:
                time.sleep(0.2)
        finally:
            self.kill_node("worker")
            proc.wait(10)
        text = log.read_text(errors="replace")
        if proc.returncode == 0 or "InvalidAuthToken" not in text:
            raise RuntimeError(f"a node with a wrong token was not refused by {HEAD_IP}:{GCS_PORT} "
                               f"(exit {proc.returncode}):\n{text[-1500:]}")
        return next(x.strip() for x in text.splitlines() if "InvalidAuthToken" in x)

    def kill_node(self, node: str) -> int:
        """SIGKILL every process in the node's namespace; returns how many were killed."""
        pids = [int(p) for p in sh("ip", "netns", "pids", self.ns[node]).stdout.split()]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return len(pids)

    def close(self) -> None:
        """Kill everything in both namespaces, delete them (the veth goes with them), reap."""
        if self.closed:
            return
        self.closed = True
        for node in self.ns:
            self.kill_node(node)
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(10)
        for ns in self.ns.values():
            sh("ip", "netns", "del", ns)


def ledger_lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]


def steps_before_last_start(events: list[dict], trial: int) -> list[int]:
    """The steps ``trial`` noted (each after its checkpoint was reported) before its last start."""
    mine = [e for e in events if e["trial"] == trial]
    last = max(i for i, e in enumerate(mine) if e["event"] == "start")
    return [e["step"] for e in mine[:last] if e["event"] == "step"]


def chaos_trial(config: dict) -> None:
    """A light checkpointing Tune trial: ``steps`` steps of ``step_s`` s, a checkpoint after each
    (the step count in ``state.json``), resumed from the restored checkpoint. Appends
    start/step/done events with the node's IP to the ledger (one O_APPEND write each)."""
    import ray
    from ray import tune

    ip = ray.util.get_node_ip_address()
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            start = json.loads((Path(d) / "state.json").read_text())["step"]

    def note(event: str, step: int) -> None:
        line = json.dumps({"trial": config["i"], "event": event, "step": step, "ip": ip, "pid": os.getpid()})
        fd = os.open(config["ledger"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, (line + "\n").encode())
        os.close(fd)

    note("start", start)
    for step in range(start + 1, config["steps"] + 1):
        time.sleep(config["step_s"])
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "state.json").write_text(json.dumps({"step": step}))
            tune.report({"step": step}, checkpoint=tune.Checkpoint.from_directory(d))
        note("step", step)
    note("done", config["steps"])


def drive(args: argparse.Namespace) -> int:
    """The sweep driver (runs inside the head's namespace): Tune with FailureConfig retries."""
    import ray
    from ray import tune

    ray.init(address=f"{HEAD_IP}:{GCS_PORT}", log_to_driver=False, configure_logging=False)
    deadline = time.time() + 60
    while sum(n["Alive"] for n in ray.nodes()) < 2:  # the worker registered with the GCS
        if time.time() > deadline:
            raise RuntimeError(f"the worker node {WORKER_IP} did not join {HEAD_IP}:{GCS_PORT}")
        time.sleep(0.3)
    trainable = tune.with_resources(chaos_trial, {"cpu": 1})
    space = {"i": tune.grid_search(list(range(args.trials))), "steps": args.steps, "step_s": args.step_s,
             "ledger": args.ledger}
    tuner = tune.Tuner(trainable, param_space=space,
                       tune_config=tune.TuneConfig(max_concurrent_trials=3),
                       run_config=tune.RunConfig(name="chaos", storage_path=args.storage, verbose=0,
                                                 failure_config=tune.FailureConfig(max_failures=3),
                                                 checkpoint_config=tune.CheckpointConfig(num_to_keep=2)))
    grid = tuner.fit()
    out = [{"trial": r.config["i"], "step": (r.metrics or {}).get("step"), "error": str(r.error) if r.error else None}
           for r in grid]
    Path(args.results).write_text(json.dumps(out))
    return 0


def run(args: argparse.Namespace) -> dict:
    """Bring up the cluster, run the sweep, kill the worker node mid-sweep; return the figures."""
    t0 = time.time()
    root = Path(tempfile.mkdtemp(prefix="tbchaos-", dir="/tmp"))  # short: Ray's socket paths
    nodes, ledger = TwoNodes(root), root / "ledger.jsonl"
    driver = None
    try:
        nodes.up(head_cpus=1, worker_cpus=2)
        print(f"wrong-token node refused: {nodes.intruder_refused}", flush=True)
        up_s = time.time() - t0
        with (root / "driver.log").open("w") as log:
            driver = subprocess.Popen(
                ["ip", "netns", "exec", nodes.ns["head"], sys.executable, __file__, "--drive", "--ledger", str(ledger),
                 "--storage", str(root / "storage"), "--trials", str(args.trials), "--steps", str(args.steps),
                 "--step-s", str(args.step_s), "--results", str(root / "results.json")],
                env=nodes.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + args.timeout_s
        while not any(e["event"] == "step" and e["ip"] == WORKER_IP and e["step"] >= args.kill_after
                      for e in ledger_lines(ledger)):
            if driver.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"no worker-node trial reached step {args.kill_after} (driver exit "
                                   f"{driver.poll()}); see {root}/driver.log")
            time.sleep(0.1)
        killed_at = time.time()
        killed = nodes.kill_node("worker")
        print(f"killed the worker node ({killed} processes) at {killed_at - t0:.1f} s", flush=True)
        try:
            driver.wait(timeout=max(10.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"the sweep did not finish after the node loss; see {root}/driver.log") from None
        if driver.returncode != 0:
            raise RuntimeError(f"driver exit {driver.returncode}; see {root}/driver.log")
        results = json.loads((root / "results.json").read_text())
    finally:
        if driver is not None and driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(10)
        nodes.close()
    events = ledger_lines(ledger)
    starts: dict[int, list[dict]] = {}
    for e in events:
        if e["event"] == "start":
            starts.setdefault(e["trial"], []).append(e)
    retried = sorted(t for t, s in starts.items() if len(s) > 1)
    # the trials that had checkpointed step --kill-after (what triggers the kill) before their retry
    # must resume from a checkpoint; one killed before its first checkpoint rightly starts at 0
    must_resume = sorted(t for t in retried if max(steps_before_last_start(events, t), default=0) >= args.kill_after)
    finished = [r for r in results if r["error"] is None and r["step"] == args.steps]
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return {"trials": args.trials, "started_on_worker": sorted({e["trial"] for e in events if e["ip"] == WORKER_IP}),
            "retried": retried, "resumed_from_checkpoint": [t for t in retried if starts[t][-1]["step"] > 0],
            "resume_steps": {t: starts[t][-1]["step"] for t in retried}, "must_resume": must_resume,
            "retry_node_ips": sorted({starts[t][-1]["ip"] for t in retried}), "finished": len(finished),
            "lost": args.trials - len(finished), "killed_processes": killed, "wrong_token_join": nodes.intruder_refused,
            "cluster_up_s": round(up_s, 1), "time_s": round(time.time() - t0, 1), "dir": str(root) if args.keep else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--steps", type=int, default=12, help="checkpointed steps per trial")
    ap.add_argument("--step-s", type=float, default=0.4, help="seconds per step")
    ap.add_argument("--kill-after", type=int, default=3, help="kill once a worker-node trial checkpointed this step")
    ap.add_argument("--timeout-s", type=float, default=240.0)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, ledger, storage)")
    ap.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--ledger", help=argparse.SUPPRESS)
    ap.add_argument("--storage", help=argparse.SUPPRESS)
    ap.add_argument("--results", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.drive:
        return drive(args)
    problem = netns_problem()
    if problem:
        print(f"chaos_ray: skipped: {problem}", flush=True)
        return SKIP
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally/atexit cleanup
    figures = run(args)
    print(json.dumps(figures, sort_keys=True), flush=True)
    print(f"chaos_ray: trials {figures['trials']}, retried {len(figures['retried'])}, resumed from checkpoint "
          f"{len(figures['resumed_from_checkpoint'])}, lost {figures['lost']}, time {figures['time_s']} s", flush=True)
    resumed = set(figures["resumed_from_checkpoint"])
    return 0 if figures["lost"] == 0 and figures["must_resume"] and resumed >= set(figures["must_resume"]) else 1


if __name__ == "__main__":
    sys.exit(main())
