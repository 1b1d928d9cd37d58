"""Malformed-input chaos run: thousands of generated bad inputs per input kind.

    python scripts/chaos_fuzz.py [--cases 10000] [--kinds reader,config,openclaw,telegram] [--smoke]

For each kind, valid inputs are mutated (truncated JSON, wrong types, unknown types, huge
strings, deep nesting, invalid UTF-8, duplicate ids, parent cycles, timestamps out of order,
BOMs, CRLF) and fed to the real parser or importer: the schema-v2 reader, config loading, the OpenClaw
importer and the Telegram update harvester (the last two in tracebridge/testing/fuzz_inputs.py;
the driver in tracebridge/testing/fuzz_driver.py). Promise: no crash, no hang (--case-limit-s), read = accepted +
quarantined, every problem names file:line:field, nothing valid in the same file is lost.
Prints per-kind figures; the last line sums cases and every broken promise (all must be 0).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracebridge.testing.fuzz_driver import LOCATED, PROMISES, FuzzKind, run_cases
from tracebridge.testing.fuzz_inputs import EXTRA_KINDS, OPENCLAW_MUTATIONS, TELEGRAM_MUTATIONS
from tracebridge.testing.mutate import MUTATIONS, mutate_lines


class ReaderFuzz:
    """Schema-v2 reader/validator (``check_run``) over mutated events files of a recorded run.
    Lost = fewer schema-valid events than the base has (its lines are all still in the file)."""

    def __init__(self, tmp: Path) -> None:
        from tests.conftest import record_sample_run

        base = tmp / "reader-base"
        run_id = record_sample_run(base)
        self.valid = (base / run_id / "events.jsonl").read_bytes().splitlines()
        self.run_dir = tmp / "reader" / run_id
        self.run_dir.mkdir(parents=True)
        (self.run_dir / "session.json").write_bytes((base / run_id / "session.json").read_bytes())

    def make(self, rng: random.Random) -> bytes:
        lines, _bad = mutate_lines(self.valid, rng, rng.randint(1, 4))
        return b"\n".join(lines) + (b"\n" if rng.random() < 0.8 else b"")

    def feed(self, data: bytes) -> Any:
        from tracebridge.capture.reader import RunDir
        from tracebridge.schema.validate import check_run

        (self.run_dir / "events.jsonl").write_bytes(data)
        return check_run(RunDir(self.run_dir))

    def verify(self, data: bytes, chk: Any) -> dict[str, int]:
        nonblank = sum(1 for ln in data.split(b"\n") if ln.strip(b"\r\n\t ").strip())
        return {"unreconciled": int(chk.events + chk.bad_lines + int(chk.torn_tail) != nonblank),
                "lost": max(0, len(self.valid) - chk.schema_valid_events),
                "unlocated": sum(not LOCATED.match(str(p)) for p in chk.problems)}


CONFIG_YAML = """# fuzz base
name: demo
lr: 0.0001
steps: 10
tags: [a, b]
nested:
  depth: 2
  flag: true
"""


@dataclass
class _Nested:
    depth: int = 1
    flag: bool = False


@dataclass
class _FuzzSchema:
    name: str = "x"
    lr: float = 1e-3
    steps: int = 1
    tags: list[str] = field(default_factory=list)
    nested: _Nested = field(default_factory=_Nested)

    def validate(self) -> list[str]:
        return [f"lr={self.lr}: must be > 0"] if self.lr <= 0 else []


class ConfigFuzz:
    """Config loading: a malformed YAML (plus a bad override) either loads or raises ConfigError."""

    def __init__(self, tmp: Path) -> None:
        self.lines = CONFIG_YAML.encode().splitlines()
        self.path = tmp / "cfg.yaml"

    def make(self, rng: random.Random) -> tuple[bytes, list[str]]:
        mutated, _ = mutate_lines(self.lines, rng, rng.randint(0, 3))  # 0: only the override is bad
        return b"\n".join(mutated), rng.choice([[], ["lr=0"], ["nested.depht=3"], ["steps=abc"], ["--flag"],
                                                ["tags=[x]"]])

    def feed(self, case: tuple[bytes, list[str]]) -> str:
        from tracebridge.config import ConfigError, load_config

        self.path.write_bytes(case[0])
        try:
            load_config(_FuzzSchema, self.path, case[1])
        except ConfigError:
            return "rejected"
        return "loaded"

    def verify(self, case: tuple[bytes, list[str]], outcome: str) -> dict[str, int]:
        return {outcome: 1}


# The OpenClaw importer and Telegram harvester kinds live in tracebridge/testing/fuzz_inputs.py.
KINDS: dict[str, Callable[[Path], FuzzKind]] = {"reader": ReaderFuzz, "config": ConfigFuzz, **EXTRA_KINDS}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10000)
    ap.add_argument("--kinds", default="")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="100 cases per kind")
    ap.add_argument("--case-limit-s", type=float, default=10.0, help="a case running longer is a hang (seconds)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(message)s")  # crash tracebacks go to stderr
    cases = 100 if args.smoke else args.cases
    kinds = [k for k in args.kinds.split(",") if k] or list(KINDS)
    totals = dict.fromkeys(("cases", *PROMISES), 0)
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            t0 = time.perf_counter()
            kdir = Path(tmp) / kind
            kdir.mkdir()
            stats = run_cases(KINDS[kind](kdir), random.Random(args.seed), cases, args.case_limit_s)
            stats["seconds"] = round(time.perf_counter() - t0, 1)
            print(f"{kind}: {json.dumps(stats, sort_keys=True)}", flush=True)
            for k in totals:
                totals[k] += stats.get(k, 0)
    print(f"mutations: {', '.join(sorted(set(MUTATIONS) | set(OPENCLAW_MUTATIONS) | set(TELEGRAM_MUTATIONS)))}")
    print(f"chaos_fuzz: {totals['cases']} cases over {len(kinds)} kinds, "
          + ", ".join(f"{k} {totals[k]}" for k in PROMISES))
    return 1 if any(totals[k] for k in PROMISES) else 0


if __name__ == "__main__":
    raise SystemExit(main())
