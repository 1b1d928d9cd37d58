"""scripts/bench_export.py runs in smoke mode and prints its figures, the ratio last."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_export_smoke() -> None:
    res = subprocess.run([sys.executable, str(ROOT / "scripts/bench_export.py"), "--smoke"], capture_output=True,
                         text=True, timeout=300, check=True, cwd=ROOT)
    lines = res.stdout.strip().splitlines()
    assert re.fullmatch(r"ratio export/plain \(MB/s\): \d+\.\d\d", lines[-1]), lines[-1]
    assert float(lines[-1].rsplit(" ", 1)[1]) > 0
    assert re.fullmatch(r"export config: configs/export/default.yaml \(as shipped\); redaction prescan (on|off) \(.*\)",
                        lines[-2]), lines[-2]
    rss = next(line for line in lines if line.startswith("peak RSS"))
    assert re.search(r"\d+ MB at 1x .* \d+ MB at 2x", rss), rss


def test_bench_export_openclaw_smoke() -> None:
    """With a setting of the export config (the user's own export): every export of the bench runs it."""
    res = subprocess.run([sys.executable, str(ROOT / "scripts/bench_export.py"), "--openclaw", "--smoke",
                          "--workers", "2", "views.agentlightning=false"], capture_output=True, text=True,
                         timeout=300, check=True, cwd=ROOT)
    lines = res.stdout.strip().splitlines()
    assert lines[-3].startswith("export config: configs/export/default.yaml views.agentlightning=false; redaction prescan ")
    assert re.fullmatch(r"ratio transcripts→bundle/\(read\+loads\+dumps\): \d+\.\d\d", lines[-1]), lines[-1]
    assert re.fullmatch(r"ratio import/\(read\+loads\+dumps\): \d+\.\d\d", lines[-2]), lines[-2]
    assert "40 transcripts" in lines[0]
    assert any(re.search(r"s with --workers 2 .*: \d+\.\d\dx$", line) for line in lines), lines
    assert any(re.fullmatch(r"push's row check of this bundle on \d+ CPUs: \d+\.\d\d s with 1 process, "
                            r"\d+\.\d\d s with --workers 2: \d+\.\d\dx", line) for line in lines), lines
    assert any(re.fullmatch(r"CPU transcripts → bundle with --workers 2: main process \d+\.\d\d s, workers "
                            r"\d+\.\d\d s \(\d+% in the main process\)", line) for line in lines), lines
    assert any(re.fullmatch(r"export --cache: \d+\.\d\d s filling the cache, \d+\.\d\d s again with no run "
                            r"changed \(\d+\.\dx less than building every run\)", line) for line in lines), lines
    floor = next(line for line in lines if line.startswith("bundle bytes floor"))
    m = re.fullmatch(r"bundle bytes floor: (\d+\.\d\d) s to hash and write its (\d+\.\d) MB of rows with no other "
                     r"work; with this import and curation, views and serialising free the ratio could reach \d+\.\d\d", floor)
    assert m, floor
    bundle = next(line for line in lines if line.startswith("bundle:"))
    assert re.match(r"bundle: 40 runs read, [1-9]\d* exported, \d+ duplicates, 0 quarantined", bundle), bundle
    assert re.search(r"; \d+\.\d MB \(.*views \d+\.\d MB", bundle) and "agentlightning" not in bundle, bundle
    # the floor rewrites exactly the rows of the bundle's JSONL files (views, runs.jsonl, quarantine.jsonl)
    views = float(re.search(r"views (\d+\.\d) MB", bundle)[1])
    assert views <= float(m[2]) <= float(re.search(r"; (\d+\.\d) MB \(", bundle)[1]) + 0.1, (floor, bundle)


def test_peak_rss_of_a_child_is_its_own() -> None:
    # ru_maxrss survives exec on Linux: a child of a 300 MB parent would report >= 300 MB.
    # The bench's children report their own high-water mark instead.
    code = ("import subprocess, sys; big = bytearray(300 << 20); big[::4096] = b'x' * len(big[::4096]); "
            "print(subprocess.run([sys.executable, '-c', 'import bench_export as b; print(b.peak_rss_mb())'], "
            "capture_output=True, text=True, check=True).stdout)")
    env = {"PYTHONPATH": str(ROOT / "scripts"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                         cwd=ROOT, env=env).stdout
    assert 5 < float(out.strip()) < 250, out


def test_bytes_floor_rewrites_every_row(tmp_path: Path) -> None:
    """The floor hashes and writes exactly the bytes of the bundle's JSONL files, in blocks, and nothing else."""
    import orjson

    sys.path.insert(0, str(ROOT / "scripts"))
    import bench_bundle

    bundle = tmp_path / "bundle"
    (bundle / "views/worker_sft").mkdir(parents=True)
    rows = [{"messages": [{"role": "user", "content": f"ask {i} é"}], "meta": {"run_id": f"r{i}", "n": i}}
            for i in range(7)]
    data = b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in rows)
    (bundle / "views/worker_sft/train.jsonl").write_bytes(data)
    (bundle / "runs.jsonl").write_bytes(data[:data.index(b"\n") + 1])
    (bundle / "manifest.json").write_text("{}")  # not rows: left out
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    spent, size = bench_bundle.bytes_floor(bundle, scratch, block=50)
    assert size == len(data) + data.index(b"\n") + 1
    assert spent >= 0 and not any(scratch.iterdir())
