"""The demo end to end with planted secrets, then a scan of everything it wrote.

    python scripts/chaos_secrets.py [--full] [--keep]

Plants secrets (AWS key id + secret, GitHub token, a password in a URL, an e-mail, a card
number) in an agent run recorded next to a simulator collection and in the environment every
command runs with (credentials, tokens, URLs), then runs the demo's commands as a user would:
collect → validate → export → push → sweep on an embedded Ray head (report written, pushed,
pulled and verified). ``--full`` runs the demo's sweep as configured; the default keeps one role
and one learning rate. Afterwards every file written (traces, bundle, storage, reports, command
logs, the Ray head's temp folder and logs) is scanned for each planted value, raw or base64 /
URL / JSON encoded. Figures last: files scanned, leaks (must be 0). Exit 1 on a leak.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from tests.export.conftest import record_pii_run
from tracebridge.cluster.config import ClusterConfig
from tracebridge.cluster.head import running_head, start_head, stop_head
from tracebridge.curate.redact import capture_redactor
from tracebridge.testing.secret_scan import planted_env, planted_text, scan


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="the demo sweep as configured (3 roles × 2 lr)")
    ap.add_argument("--keep", action="store_true", help="keep the output folder and the Ray head it started")
    a = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="chaos-secrets-"))
    traces, bundles, store, reports, logs = (out / n for n in ("traces", "bundles", "storage", "reports", "logs"))
    logs.mkdir()
    env = {**os.environ, **planted_env(), "TRACEBRIDGE_LOG_LEVEL": "DEBUG"}
    t0, started = time.monotonic(), time.time()
    os.environ.update(planted_env())  # the head (and its jobs) start from the same shell
    reused = running_head(ClusterConfig()) is not None
    head = start_head(ClusterConfig())  # started here so its temp folder is scanned before it goes

    def tb(name: str, *args: str) -> None:
        print(f"==> tracebridge {' '.join(args)}", flush=True)
        with open(logs / f"{name}.log", "wb") as fh:
            rc = subprocess.run([sys.executable, "-m", "tracebridge.cli.__main__", *args], cwd=ROOT, env=env,
                                stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
        if rc != 0:
            raise SystemExit(f"chaos_secrets: {name} failed (exit {rc}); see {logs / name}.log")

    tb("collect", "collect", "configs/collect/smoke.yaml", "workers=1", "--out", str(traces))
    record_pii_run(traces, redactor=capture_redactor(), text=planted_text())
    tb("validate", "validate", str(traces))
    tb("export", "export", str(traces), "--out", str(bundles))
    tb("push", "push", str(bundles), store.as_uri())
    small = [] if a.full else ["roles=[verifier]", "ablations.train.lr=[1.0e-3]"]
    tb("submit", "submit", "configs/sweep/demo.yaml", f"bundle={bundles}", f"storage={store.as_uri()}", *small,
       "--out", str(reports), "--wait", "--json")
    if not list(reports.glob("*/report.html")):
        raise SystemExit(f"chaos_secrets: the sweep wrote no report; see {logs / 'submit.log'}")
    n, leaks = scan([out])
    n_ray, ray_leaks = scan([Path(head.temp_dir)], since=started - 1)  # a reused head: what this run wrote
    n, leaks = n + n_ray, leaks + ray_leaks
    if not reused and not a.keep:
        stop_head(head)
    for leak in leaks[:20]:
        print(f"LEAK {leak}")
    if not a.keep:
        shutil.rmtree(out, ignore_errors=True)
    print(f"run {time.monotonic() - t0:.0f}s, Ray head {'reused' if reused else 'started'}: {n_ray} files of its "
          f"temp folder and logs scanned, "
          f"reports {'kept in ' + str(out) if a.keep else 'removed'}")
    print(f"files scanned={n} planted values=6 leaks={len(leaks)} {'OK' if not leaks else 'LEAKED'}")
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())
