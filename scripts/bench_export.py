"""Export throughput and memory: MB/s of traces → bundle on one core (CPU time, pinned to one core, best
of 3), against a plain read + ``json.loads`` + ``json.dumps`` + write loop over the same files in the same
run, and the peak RSS of an export at 1× and 10× the input (each measured in a fresh subprocess).

    python scripts/bench_export.py [--seeds 25] [--scale 10] [--smoke]
    python scripts/bench_export.py --openclaw [--sessions 2000 --turns 5 --seed 1 | --data DIR] [--smoke]
    python scripts/bench_export.py ... [key=value ...]   # the export config's settings, as `tracebridge export` takes them

Input: simulator traces (``configs/collect/smoke.yaml``, 16 episodes per seed; the 10× input is ten times
the seeds, so no run is a duplicate). The export runs with the default config: quality checks, pass 1 +
pass 2 redaction, dedup, split, leakage, views, report and manifest. Prints the ratio (export MB/s /
plain-loop MB/s) last.

``--openclaw`` measures the whole path of issue 10: OpenClaw transcripts → schema-v2 traces (``import_openclaw``,
traces on tmpfs) → bundle (the default export config; its ``quality.open_ended_sources=[openclaw]`` keeps
sessions that record no ``episode_end``), against a read + ``json.loads`` + ``json.dumps`` loop over the
transcript lines, all in CPU seconds of this process, best of ``--repeat``; transcripts as
``scripts/bench_import.py`` makes them. Peak RSS of the whole path is measured in fresh subprocesses on all
transcripts and on a tenth of them. ``--workers 2`` adds the wall time of the whole path on all CPUs with
two import and two export workers against one process, the CPU seconds of the main process against those
of the workers (the main process's share is the serial part that bounds the scaling), and the wall time of
``push``'s row check of the bundle in one process and with ``push --workers 2``. It prints the bundle's
bytes floor: the CPU seconds of hashing and writing the bundle's rows, held as bytes, with nothing else to
do, which no exporter of that bundle can beat, and the ratio the whole path would have with this import
and that floor alone (curation, views and serialising free); and the export with a run cache (``export
--cache``): once filling it, once more with no run changed, as a daily cycle re-exports its history.
The last line is the ratio (transcripts → bundle) / (read+loads+dumps loop).

Every export runs ``configs/export/default.yaml`` with the ``key=value`` settings given (the same as
``tracebridge export``'s), so the figures are those of a user's own export: for instance
``views.agentlightning=false`` (no Agent Lightning files) or ``views.conversation_rows=turn``. A line before
the ratios names them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_bundle import all_cpus, clock  # scripts/ is on the path: this script's folder

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")


def one_core() -> None:
    """Pin this process to one core (the figure is per core)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def collect(out: Path, seeds: int) -> Path:
    from tracebridge.config import load_config
    from tracebridge.sim.collect import collect as run_collect
    from tracebridge.sim.config import CollectConfig

    cfg = load_config(CollectConfig, ROOT / "configs/collect/smoke.yaml",
                      ["workers=1", f"seeds.fixed=[{','.join(map(str, range(seeds)))}]"])
    run_collect(cfg, str(out))
    return out


def trace_files(root: Path) -> list[Path]:
    return sorted(p for d in root.iterdir() for p in (d / "events.jsonl", d / "session.json") if p.is_file())


def plain_loop(files: list[Path], out: Path) -> float:
    """CPU seconds to read, parse and write back every record of ``files``."""
    t0 = clock()
    with open(out, "w") as sink:
        for f in files:
            if f.suffix == ".json":
                sink.write(json.dumps(json.loads(f.read_text())) + "\n")
                continue
            with open(f) as fh:
                sink.writelines(json.dumps(json.loads(line)) + "\n" for line in fh)
    return clock() - t0


def export_config(overrides: list[str]) -> Any:
    """The export config every export here runs: ``configs/export/default.yaml`` and ``overrides``."""
    from tracebridge.config import load_config
    from tracebridge.export.config import ExportConfig

    return load_config(ExportConfig, ROOT / "configs/export/default.yaml", overrides)


def export_once(root: Path, out: Path, cfg: Any) -> float:
    from tracebridge.export.pipeline import export_traces

    t0 = clock()
    res = export_traces(root, out, cfg)
    dt = clock() - t0
    if res.report["runs"]["read"] != res.report["runs"]["accepted"] + res.report["runs"]["quarantined"]:
        raise SystemExit("counts do not reconcile")
    return dt


def peak_rss_mb() -> float:
    """Peak RSS of this process in MB: Linux's VmHWM, the high-water mark of this program's own
    memory. ``ru_maxrss`` survives ``exec`` on Linux, so a child started by a larger parent would
    report the parent's size (this script's children did: 121 MB for any input)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20 if sys.platform == "darwin" else 1024)


def rss_child(root: Path, cfg: Any) -> None:
    """Subprocess entry: export ``root`` and print the peak RSS in MB."""
    one_core()
    with tempfile.TemporaryDirectory() as tmp:
        export_once(root, Path(tmp), cfg)
    print(json.dumps({"peak_rss_mb": peak_rss_mb()}))


def peak_rss(root: Path, overrides: list[str], flag: str = "--rss-child") -> float:
    res = subprocess.run([sys.executable, __file__, flag, str(root), *overrides], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return float(json.loads(res.stdout.strip().splitlines()[-1])["peak_rss_mb"])


def openclaw_path(src: Path, work: Path, cfg: Any, workers: int = 1) -> tuple[float, float, object]:
    """CPU seconds of import and of export (transcripts ``src`` → traces → bundle under ``work``),
    each with ``workers`` processes."""
    from tracebridge.export.pipeline import export_traces
    from tracebridge.importers.openclaw import import_openclaw

    shutil.rmtree(work, ignore_errors=True)
    t0 = clock()
    rep = import_openclaw([src], work / "traces", workers=workers)
    t1 = clock()
    res = export_traces(work / "traces", work / "bundles", cfg, workers=workers)
    t2 = clock()
    runs = res.report["runs"]
    if not rep.reconciles or runs["read"] != runs["accepted"] + runs["quarantined"]:
        raise SystemExit("counts do not reconcile")
    return t1 - t0, t2 - t1, res


def cached_exports(traces: Path, out: Path, cfg: Any) -> tuple[float, float]:
    """CPU seconds of an export of ``traces`` that fills a run cache, then of one more export with that
    cache and no run changed (what a daily cycle pays for its history)."""
    from tracebridge.export.pipeline import export_traces

    times = []
    for name in ("fill", "reuse"):
        t0 = clock()
        res = export_traces(traces, out / name, cfg, cache_dir=out / "cache")
        times.append(clock() - t0)
        shutil.rmtree(res.path)
    return times[0], times[1]


def openclaw_rss_child(src: Path, cfg: Any) -> None:
    """Subprocess entry: transcripts ``src`` → bundle on tmpfs; print the peak RSS in MB."""
    one_core()
    with tempfile.TemporaryDirectory(dir=_shm()) as tmp:
        openclaw_path(src, Path(tmp) / "work", cfg)
    print(json.dumps({"peak_rss_mb": peak_rss_mb()}))


def _shm() -> str | None:
    return "/dev/shm" if Path("/dev/shm").is_dir() else None


def children_cpu() -> float:
    """CPU seconds of this process's finished children (the import and export workers)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def workers_scaling(src: Path, out: Path, workers: int, cpus: set[int] | None,
                    repeat: int, cfg: Any) -> tuple[float, float, float, float]:
    """The whole path on all of this process's CPUs, one process then ``workers`` import and export
    workers (interleaved, best of ``repeat``): wall seconds of each, and the CPU seconds of this (the
    main) process and of the workers with ``workers`` (their run with the least main-process CPU: the
    serial part, robust to other work on the machine). The pin to one core is restored after."""
    with all_cpus(cpus):
        one, many, cpu = [], [], []
        for _ in range(repeat):
            for n, acc in ((1, one), (workers, many)):
                t0, c0, k0 = time.perf_counter(), clock(), children_cpu()
                openclaw_path(src, out / "scaling", cfg, n)
                acc.append(time.perf_counter() - t0)
                if n > 1:
                    cpu.append((clock() - c0, children_cpu() - k0))
        main, kids = min(cpu)
        return min(one), min(many), main, kids


def openclaw_main(args: argparse.Namespace, cfg: Any) -> None:
    """``--openclaw``: the whole path against the loads+dumps loop (see the module docstring)."""
    from bench_bundle import bundle_sizes, bytes_floor, push_check
    from bench_import import make_data, plain_loop

    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    one_core()
    repeat = 1 if args.smoke else args.repeat
    with tempfile.TemporaryDirectory(prefix="bench-oc-") as tmp, \
            tempfile.TemporaryDirectory(prefix="bench-oc-out-", dir=_shm()) as out:
        src, how = make_data(args, Path(tmp))
        files = sorted(p for p in src.rglob("*") if p.is_file() and ".jsonl" in p.name)
        mb = sum(p.stat().st_size for p in files) / 1e6
        openclaw_path(src, Path(out) / "warm", cfg)  # imports and lazy tables, paid once as by any long-lived process
        loops, paths = [], []
        for _ in range(repeat):  # interleaved, best of N
            loops.append(plain_loop(files, True, clock))
            paths.append(openclaw_path(src, Path(out) / "work", cfg))
        loop = min(loops)
        imp, exp, res = min(paths, key=lambda p: p[0] + p[1])
        sizes = bundle_sizes(Path(res.path))  # type: ignore[attr-defined]
        floor, floor_bytes = bytes_floor(Path(res.path), Path(out))  # type: ignore[attr-defined]
        push = push_check(Path(res.path), args.workers, cpus) if args.workers > 1 else None  # type: ignore[attr-defined]
        shutil.rmtree(Path(out) / "work" / "bundles")
        fill, reuse = cached_exports(Path(out) / "work" / "traces", Path(out) / "cached", cfg)
        scaling = workers_scaling(src, Path(out), args.workers, cpus, repeat, cfg) if args.workers > 1 else None
        tenth = Path(tmp) / "tenth"
        tenth.mkdir()
        for f in files[:max(1, len(files) // 10)]:
            shutil.copy(f, tenth / f.name)
        rss = [peak_rss(p, args.overrides, "--openclaw-rss-child") for p in (src, tenth)]
    runs = res.report["runs"]  # type: ignore[attr-defined]
    print(f"input: {len(files)} transcripts, {mb:.1f} MB ({how}); traces and bundle on "
          f"{'tmpfs' if _shm() else 'disk'}; CPU seconds, best of {repeat}")
    print(f"bundle: {runs['read']} runs read, {runs['exported']} exported, {runs['duplicates']} duplicates, "
          f"{runs['quarantined']} quarantined, {runs['events_read']} events; "
          f"{sum(sizes.values()) / 1e6:.1f} MB ({', '.join(f'{k} {v / 1e6:.1f} MB' for k, v in sizes.items())})")
    print(f"plain read+json.loads+json.dumps:  {mb / loop:8.1f} MB/s ({loop:.2f} s)")
    print(f"import openclaw → schema v2:       {mb / imp:8.1f} MB/s ({imp:.2f} s)")
    print(f"export traces → bundle:            {mb / exp:8.1f} MB/s of transcripts ({exp:.2f} s)")
    print(f"transcripts → bundle:              {mb / (imp + exp):8.1f} MB/s ({imp + exp:.2f} s)")
    print(f"bundle bytes floor: {floor:.2f} s to hash and write its {floor_bytes / 1e6:.1f} MB of rows with no "
          f"other work; with this import and curation, views and serialising free the ratio could reach "
          f"{loop / (imp + floor):.2f}")
    print(f"export --cache: {fill:.2f} s filling the cache, {reuse:.2f} s again with no run changed "
          f"({exp / reuse:.1f}x less than building every run)")
    print(f"peak RSS transcripts → bundle: {rss[0]:.0f} MB for {mb:.1f} MB, {rss[1]:.0f} MB for a tenth")
    if push is not None:
        print(f"push's row check of this bundle on {len(cpus or ())} CPUs: {push[0]:.2f} s with 1 process, "
              f"{push[1]:.2f} s with --workers {args.workers}: {push[0] / push[1]:.2f}x")
    if scaling is not None:
        w1, wn, main, kids = scaling
        print(f"CPU transcripts → bundle with --workers {args.workers}: main process {main:.2f} s, workers "
              f"{kids:.2f} s ({100 * main / (main + kids):.0f}% in the main process)")
        print(f"wall transcripts → bundle on {len(cpus or ())} CPUs: {w1:.2f} s with 1 process, {wn:.2f} s with "
              f"--workers {args.workers} (import and export): {w1 / wn:.2f}x")
    print(config_line(args.overrides))
    print(f"ratio import/(read+loads+dumps): {loop / imp:.2f}")
    print(f"ratio transcripts→bundle/(read+loads+dumps): {loop / (imp + exp):.2f}")


def config_line(overrides: list[str]) -> str:
    from tracebridge.curate.prescan import describe

    return (f"export config: configs/export/default.yaml{''.join(' ' + o for o in overrides) or ' (as shipped)'}; "
            f"redaction prescan {describe()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=25, help="seeds of the smoke matrix (16 episodes each) at 1x")
    ap.add_argument("--scale", type=int, default=10, help="input multiple for the second RSS figure")
    ap.add_argument("--smoke", action="store_true", help="tiny input, for the test suite")
    ap.add_argument("--openclaw", action="store_true", help="transcripts → bundle against the loads+dumps loop")
    ap.add_argument("--sessions", type=int, default=2000, help="--openclaw: generated sessions")
    ap.add_argument("--turns", type=int, default=5, help="--openclaw: turns per generated session")
    ap.add_argument("--seed", type=int, default=1, help="--openclaw: generator seed")
    ap.add_argument("--data", help="--openclaw: existing transcripts (not generated)")
    ap.add_argument("--repeat", type=int, default=3, help="--openclaw: best of N")
    ap.add_argument("--workers", type=int, default=1, help="--openclaw: also time the whole path on all CPUs "
                    "with this many export workers against one process (wall clock)")
    ap.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--openclaw-rss-child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("overrides", nargs="*", metavar="key=value",
                    help="export config settings (configs/export/default.yaml), as `tracebridge export` takes them")
    args = ap.parse_args()
    from tracebridge.config import ConfigError

    try:
        cfg = export_config(args.overrides)  # a bad key fails here, before any input is made
    except ConfigError as exc:
        raise SystemExit(f"bench_export: {exc}") from None
    if args.rss_child:
        rss_child(args.rss_child, cfg)
        return
    if args.openclaw_rss_child:
        openclaw_rss_child(args.openclaw_rss_child, cfg)
        return
    if args.openclaw:
        openclaw_main(args, cfg)
        return
    one_core()
    seeds, scale = (2, 2) if args.smoke else (args.seeds, args.scale)
    tmp = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        base = collect(tmp / "traces", seeds)
        files = trace_files(base)
        mb = sum(f.stat().st_size for f in files) / 1e6
        runs = len([p for p in base.iterdir() if p.is_dir()])
        export_once(base, tmp / "warm", cfg)  # imports and lazy tables, paid once as by any long-lived process
        plain_loop(files, tmp / "warm.jsonl")
        plain = min(plain_loop(files, tmp / f"plain{i}.jsonl") for i in range(3))
        exp = min(export_once(base, tmp / f"bundles{i}", cfg) for i in range(3))
        rss1 = peak_rss(base, args.overrides)
        big = collect(tmp / "traces_big", seeds * scale)  # fresh episodes: no duplicates to drop
        rss10 = peak_rss(big, args.overrides)
        print(f"input: {runs} runs, {mb:.2f} MB of traces (events.jsonl + session.json)")
        print(f"plain read+json.loads+json.dumps+write: {mb / plain:.2f} MB/s ({plain:.2f} CPU s, best of 3)")
        print(f"tracebridge export (curate + views + bundle): {mb / exp:.2f} MB/s ({exp:.2f} CPU s, best of 3)")
        mb10 = sum(f.stat().st_size for f in trace_files(big)) / 1e6
        print(f"peak RSS export: {rss1:.0f} MB at 1x ({mb:.1f} MB), {rss10:.0f} MB at {scale}x ({mb10:.1f} MB)")
        print(config_line(args.overrides))
        print(f"ratio export/plain (MB/s): {plain / exp:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
