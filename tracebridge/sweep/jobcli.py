"""The command line the cluster jobs (``jobs/*.py``) share: logging set up once, ``--help``, and
usage errors with their own exit code (2), apart from a job's "trials failed" (1)."""

from __future__ import annotations

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
