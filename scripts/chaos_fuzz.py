"""Malformed-input chaos run: thousands of generated bad inputs per input kind.

    python scripts/chaos_fuzz.py [--cases 10000] [--kinds reader,config,...] [--smoke]

For each kind, valid inputs are mutated (truncated JSON, wrong types, unknown types, huge
strings, deep nesting, invalid UTF-8, duplicate ids, parent cycles, timestamps out of order,
BOMs, CRLF) and fed to the real parser. Promise: no crash, no hang, read = accepted +
quarantined, every problem names file:line:field, nothing valid in the same file is lost.
Prints per-kind figures; the last line sums cases, crashes and lost items (must be 0).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracebridge.testing.mutate import MUTATIONS, mutate_lines  # noqa: E402

LOCATED = re.compile(r"^.+:(\d+|-): [^:]+: .+")


def fuzz_reader(tmp: Path, rng: random.Random, cases: int) -> dict[str, int]:
    """Schema-v2 reader/validator over mutated events files."""
    from tests.conftest import record_sample_run
    from tracebridge.capture.reader import RunDir
    from tracebridge.schema.validate import check_run

    base = tmp / "reader-base"
    run_id = record_sample_run(base)
    valid = (base / run_id / "events.jsonl").read_bytes().splitlines()
    session = (base / run_id / "session.json").read_bytes()
    stats = {"cases": 0, "crashes": 0, "lost": 0, "unreconciled": 0, "unlocated": 0}
    run_dir = tmp / "reader" / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "session.json").write_bytes(session)
    for _ in range(cases):
        stats["cases"] += 1
        lines, _bad = mutate_lines(valid, rng, rng.randint(1, 4))
        data = b"\n".join(lines) + (b"\n" if rng.random() < 0.8 else b"")
        (run_dir / "events.jsonl").write_bytes(data)
        try:
            chk = check_run(RunDir(run_dir))
        except Exception:  # noqa: BLE001 - counting crashes is the point
            stats["crashes"] += 1
            continue
        nonblank = sum(1 for ln in data.split(b"\n") if ln.strip(b"\r\n\t ").strip())
        stats["unreconciled"] += chk.events + chk.bad_lines + int(chk.torn_tail) != nonblank
        stats["lost"] += max(0, len(valid) - chk.schema_valid_events)
        stats["unlocated"] += sum(not LOCATED.match(str(p)) for p in chk.problems)
    return stats


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


def fuzz_config(tmp: Path, rng: random.Random, cases: int) -> dict[str, int]:
    """Config loading: a malformed YAML either loads or raises ConfigError, nothing else."""
    from tracebridge.config import ConfigError, load_config

    stats = {"cases": 0, "crashes": 0, "lost": 0, "unreconciled": 0, "unlocated": 0, "loaded": 0,
             "rejected": 0}
    lines = CONFIG_YAML.encode().splitlines()
    path = tmp / "cfg.yaml"
    for _ in range(cases):
        stats["cases"] += 1
        mutated, _ = mutate_lines(lines, rng, rng.randint(1, 3))
        path.write_bytes(b"\n".join(mutated))
        overrides = rng.choice([[], ["lr=0"], ["nested.depht=3"], ["steps=abc"], ["--flag"], ["tags=[x]"]])
        try:
            load_config(_FuzzSchema, path, overrides)
            stats["loaded"] += 1
        except ConfigError:
            stats["rejected"] += 1
        except Exception:  # noqa: BLE001
            stats["crashes"] += 1
    return stats


# Kinds provided by other packages register here when present (importer, telegram harvester).
KINDS: dict[str, Callable[[Path, random.Random, int], dict[str, int]]] = {
    "reader": fuzz_reader,
    "config": fuzz_config,
}


def _optional_kinds() -> None:
    try:
        from tracebridge.testing.fuzz_inputs import EXTRA_KINDS  # importer/telegram fuzzers
    except ImportError:
        return
    KINDS.update(EXTRA_KINDS)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10000)
    ap.add_argument("--kinds", default="")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="200 cases per kind")
    args = ap.parse_args()
    _optional_kinds()
    cases = 200 if args.smoke else args.cases
    kinds = [k for k in args.kinds.split(",") if k] or list(KINDS)
    totals = {"cases": 0, "crashes": 0, "lost": 0, "unreconciled": 0, "unlocated": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            t0 = time.perf_counter()
            kdir = Path(tmp) / kind
            kdir.mkdir()
            stats = KINDS[kind](kdir, random.Random(args.seed), cases)
            stats["seconds"] = round(time.perf_counter() - t0, 1)
            print(f"{kind}: {json.dumps(stats, sort_keys=True)}")
            for k in totals:
                totals[k] += stats.get(k, 0)
    print(f"mutations: {', '.join(sorted(MUTATIONS))}")
    print(f"chaos_fuzz: {totals['cases']} cases over {len(kinds)} kinds, crashes {totals['crashes']}, "
          f"lost {totals['lost']}, unreconciled {totals['unreconciled']}, unlocated {totals['unlocated']}")
    return 1 if totals["crashes"] or totals["lost"] or totals["unreconciled"] or totals["unlocated"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
