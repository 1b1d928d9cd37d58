"""The image the KubeRay RayJob runs its sweep in (infra/docker/Dockerfile) holds every path its entrypoint
reads or names, and its build context lets each COPY source through while keeping raw traces and the venv out.

Before, the image had no infra/: the RayJob's entrypoint passes ``cluster=infra/kuberay/rayjob.yaml``, which the
report manifest stamps as the cluster the sweep ran on, and the file was not in the image it named; and with no
.dockerignore, ``docker build .`` sent the whole checkout (traces/, bundles/, .venv/) to the builder."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"


def image_paths(dockerfile: Path) -> tuple[str, list[str], list[str]]:
    """The Dockerfile's WORKDIR, the paths (relative to it) its COPY lines fill, and their sources."""
    workdir, copied, sources = "/", [], []
    for line in dockerfile.read_text().splitlines():
        words = [w for w in line.split() if not w.startswith("--")]  # --chown=...
        if words[:1] == ["WORKDIR"]:
            workdir = words[1]
        elif words[:1] == ["COPY"]:
            *src, dest = words[1:]
            sources += src
            copied += [s.rstrip("/") for s in src] if dest in ("./", ".") else [dest.removeprefix("./").rstrip("/")]
    return workdir, copied, sources


def in_image(path: str, copied: list[str]) -> bool:
    return any(path == c or path.startswith(c + "/") for c in copied)


def entrypoint_paths() -> list[str]:
    """Every repository file the RayJob's entrypoint reads or names: the job script, the sweep YAML, the recipe
    and model YAMLs that sweep loads, and each ``key=value`` whose value is a file of the repository."""
    from tracebridge.sweep.config import load_sweep_config

    words = yaml.safe_load((ROOT / "infra" / "kuberay" / "rayjob.yaml").read_text())["spec"]["entrypoint"].split()
    script, sweep, overrides = words[1], words[2], [w for w in words[3:] if "=" in w]
    cfg = load_sweep_config(str(ROOT / sweep), overrides)
    named = [v for _, _, v in (o.partition("=") for o in overrides) if "://" not in v and (ROOT / v).is_file()]
    return [script, sweep, *(p for p in (cfg.train_config, cfg.model_config) if p), *named]


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore ``patterns`` leave ``path`` out of the build context (the last match decides; a
    pattern that matches a folder matches what is under it)."""
    out = False
    for pat in patterns:
        neg, pat = pat.startswith("!"), pat.lstrip("!")
        parts = Path(path).parts
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        plain = pat.removeprefix("**/")
        if any(fnmatch.fnmatch(p, pat) for p in prefixes) or (pat.startswith("**/") and any(
                fnmatch.fnmatch(part, plain) for part in parts)):
            out = not neg
    return out


def dockerignore() -> list[str]:
    path = ROOT / ".dockerignore"
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def test_every_path_the_rayjob_entrypoint_reads_or_names_is_in_the_image():
    workdir, copied, _ = image_paths(DOCKERFILE)
    needed = entrypoint_paths()
    assert "infra/kuberay/rayjob.yaml" in needed  # the cluster= it stamps into the report manifest
    head = yaml.safe_load((ROOT / "infra" / "kuberay" / "rayjob.yaml").read_text())["spec"]["rayClusterSpec"]
    assert head["headGroupSpec"]["template"]["spec"]["containers"][0]["workingDir"] == workdir
    for path in needed:
        assert (ROOT / path).is_file(), path
        assert in_image(path, copied), f"{path} is read by the RayJob's entrypoint but not in the image: {copied}"
    # what commands run in the image read by default: the window's launcher YAML, the schedule templates
    from tracebridge.ops.config import WeeklyConfig

    for path in (WeeklyConfig().cluster, "infra/systemd", "infra/cron"):
        assert (ROOT / path).exists() and in_image(path, copied), path


def test_the_build_context_holds_every_copy_source_and_no_traces():
    _, _, sources = image_paths(DOCKERFILE)
    patterns = dockerignore()
    for src in sources:
        assert (ROOT / src).exists(), f"COPY {src}: not in the repository (the build context)"
        assert not ignored(src, patterns), f"COPY {src}: left out of the build context by .dockerignore"
        for f in (ROOT / src).rglob("*.py") if (ROOT / src).is_dir() else []:
            assert not ignored(f.relative_to(ROOT).as_posix(), patterns), f
    for private in ("traces/r1/events.jsonl", "bundles/x/manifest.json", ".venv/bin/python", "runs/a/trial.json",
                    "demo_out/storage/x", "tracebridge/__pycache__/x.pyc", "storage/reports/x"):
        assert ignored(private, patterns), f"{private} would be sent to the Docker builder"
