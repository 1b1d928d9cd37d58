"""The command line the cluster jobs (``jobs/*.py``) share: logging set up once, ``--help``, and
usage errors with their own exit code (2), apart from a job's "trials failed" (1); and the last stdout
line of a job that stops before its work (``job_error``)."""

from __future__ import annotations

import json
import logging
import sys

NOISY = ("ray", "transformers", "datasets", "httpx")


def job_args(doc: str) -> list[str]:
    """Set up logging and return the job's arguments.

    ``-h``/``--help`` prints ``doc`` and exits 0; no arguments, or a flag where the config belongs,
    prints it to stderr and exits 2.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = sys.argv[1:]
    if args[:1] in (["-h"], ["--help"]):
        print(doc)
        sys.exit(0)
    if not args or args[0].startswith("-"):
        print(doc, file=sys.stderr)
        sys.exit(2)
    return args


def job_error(log: logging.Logger, code: int, message: str, sweep_id: str | None = None) -> int:
    """Log ``message`` and print the job's summary line for a stop before any trial ran:
    ``{"sweep_id", "ok": false, "error", "exit_code"}``, the last JSON line ``submit`` reads from the
    job's log (``cluster.client.job_summary``), so ``submit --json`` says why the job failed instead of
    only Ray's "exit code 2". Returns ``code`` (the job's exit code)."""
    log.error("%s", message)
    print(json.dumps({"sweep_id": sweep_id, "ok": False, "error": message, "exit_code": code}), flush=True)
    return code
