"""The adoption-plan doc cannot rot: every ``tracebridge ...`` command it names is a real
subcommand path with real options, every repository file it names exists, every config key it
names resolves in the config file named next to it, and its canonical locations are the configs'."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from omegaconf import OmegaConf
from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.config import ConfigError, load_config, read_yaml, schema_for

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "PHASED_ADOPTION_PLAN.md"
SPAN = re.compile(r"`([^`\n]+)`")
CONFIG = re.compile(r"^configs/[\w./-]+\.ya?ml$")
REPO_PATH = re.compile(r"^(configs|infra|docs|jobs|scripts|tracebridge)/[\w./-]+$")
DOTTED = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+(=\S*)?$")
BARE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")
FILE_SUFFIXES = (".py", ".md", ".yaml", ".yml", ".json", ".jsonl", ".timer", ".service", ".cron", ".toml")
KEY_COLUMNS = ("config keys", "set by")


def _spans(text: str) -> list[str]:
    return SPAN.findall(text)


def _units(text: str) -> list[tuple[list[str], dict[int, list[str]]]]:
    """Table rows and paragraphs/list items, as (all spans, spans of the config-key column by index)."""
    units: list[tuple[list[str], dict[int, list[str]]]] = []
    key_cols: list[int] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            units.append((_spans(" ".join(para)), {}))
            para.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            flush()
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(set(c) <= {"-", ":"} for c in cells):
                continue
            if not any("`" in c for c in cells):  # a header row
                key_cols = [i for i, c in enumerate(cells) if c.lower() in KEY_COLUMNS]
                continue
            units.append((_spans(line), {i: _spans(cells[i]) for i in key_cols if i < len(cells)}))
        elif not line.strip() or line.startswith(("#", "- ")):
            flush()
            if line.startswith("- "):
                para.append(line)
        else:
            para.append(line)
    flush()
    return units


def _commands(text: str) -> list[list[str]]:
    return [shlex.split(s.replace("<", "_").replace(">", "_")) for s in _spans(text) if s.startswith("tracebridge ")]


def _resolve(cfg: Any, key: str) -> bool:
    node = cfg
    for part in key.split("."):
        if dataclasses.is_dataclass(node) and part in {f.name for f in dataclasses.fields(node)}:
            node = getattr(node, part)
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    return True


def _is_key(span: str, bare: bool) -> bool:
    name = span.split("=", 1)[0]
    if name.startswith("tracebridge.") or name.endswith(FILE_SUFFIXES):
        return False
    return bool(DOTTED.match(span) or (bare and BARE.match(name)))


_LOADED: dict[str, Any] = {}


def _config(path: str) -> Any:
    """The resolved config of a file; its schema's defaults when the file alone does not validate
    (``configs/sweep/weekly.yaml`` leaves ``bundle`` to the weekly job)."""
    if path not in _LOADED:
        schema = schema_for(ROOT / path)
        try:
            _LOADED[path] = load_config(schema, ROOT / path)
        except ConfigError:
            _LOADED[path] = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), read_yaml(ROOT / path)))
    return _LOADED[path]


def _configs_named(spans: list[str]) -> list[str]:
    """Config files a unit names, also as arguments inside command spans."""
    return [t for s in spans for t in s.split() if CONFIG.match(t)]


def _key_problems(text: str) -> list[str]:
    """Keys must resolve in a config file named in the same table row or paragraph, else in the
    last one named earlier in the same section (the paragraph that introduces a table)."""
    problems = []
    for section in re.split(r"(?m)^## ", text):
        problems += _section_key_problems(section)
    return problems


def _section_key_problems(text: str) -> list[str]:
    problems: list[str] = []
    scope: list[str] = []
    for spans, columns in _units(text):
        configs = _configs_named(spans) or scope
        scope = configs
        keys = {s.split("=", 1)[0] for s in spans if _is_key(s, bare=False)}
        keys |= {s.split("=", 1)[0] for cell in columns.values() for s in cell if _is_key(s, bare=True)}
        if keys and not configs:
            problems.append(f"{sorted(keys)}: no configs/...yaml named next to them")
            continue
        for key in sorted(keys):
            if not any((ROOT / c).is_file() and _resolve(_config(c), key) for c in configs):
                problems.append(f"{key}: not a key of {', '.join(configs)}")
    return problems


def _command_problems(argv: list[str], root: Any) -> tuple[list[str], list[str]]:
    """The subcommand path of ``argv`` and what is wrong with it (empty when it is a real command).

    ``root`` is the click command of the Typer app (Typer ships its own click: groups are told
    apart by their ``commands`` map, not by class)."""
    cmd, path = root, []
    for tok in argv[1:]:
        if tok not in getattr(cmd, "commands", {}):
            break
        cmd = cmd.commands[tok]
        path.append(tok)
    if not path or hasattr(cmd, "commands"):
        return path, [f"{' '.join(argv)}: not a subcommand path (next: {', '.join(sorted(getattr(cmd, 'commands', {})))})"]
    opts = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
    flags = [t.split("=", 1)[0] for t in argv[1 + len(path):] if t.startswith("--")]
    return path, [f"{' '.join(argv)}: {f} is not an option of {' '.join(path)}" for f in flags if f not in opts]


def test_every_command_in_the_doc_is_a_real_subcommand() -> None:
    text = DOC.read_text()
    commands = _commands(text)
    assert len(commands) >= 20  # the doc maps every phase to commands
    root = typer.main.get_command(app)
    problems, paths = [], set()
    for argv in commands:
        path, bad = _command_problems(argv, root)
        problems += bad
        if not bad:
            paths.add(tuple(path))
    assert not problems, "\n".join(problems)
    runner = CliRunner()
    for path in sorted(paths):
        res = runner.invoke(app, [*path, "--help"])
        assert res.exit_code == 0 and "Usage" in res.output, (path, res.output)
    for need in (("shadow-cycle",), ("review",), ("ops", "phase2-report"), ("gate",), ("promote",), ("rollback",),
                 ("ops", "weekly"), ("ops", "monthly-review"), ("feedback", "harvest"), ("feedback", "audit")):
        assert need in paths, need


def test_the_checker_rejects_made_up_commands_options_and_keys() -> None:
    root = typer.main.get_command(app)
    assert _command_problems(["tracebridge", "ops", "shadow"], root)[1]
    assert _command_problems(["tracebridge", "ops"], root)[1]
    assert _command_problems(["tracebridge", "review", "--weeks", "3"], root)[1]
    assert not _command_problems(["tracebridge", "review", "--days", "3"], root)[1]
    assert _key_problems("| a | `canary.fractoin` in `configs/ops/canary.yaml` |")
    assert _key_problems("Set `canary.fraction` somewhere.")
    assert _key_problems("| x | config keys |\n|---|---|\n| a | `max_p95_latency` in `configs/gates/default.yaml` |")
    assert not _key_problems("| x | config keys |\n|---|---|\n| a | `max_p95_increase` in `configs/gates/default.yaml` |")


def test_every_named_file_and_config_key_exists() -> None:
    text = DOC.read_text()
    paths = {s for s in _spans(text) if REPO_PATH.match(s)}
    assert {p for p in paths if CONFIG.match(p)}, "the doc names config files"
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, missing
    problems = _key_problems(text)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("span, config, key", [
    ("artifacts/phase1-shadow/<timestamp>/", "configs/ops/shadow.yaml", "artifacts_dir"),
    ("memory/feedback/telegram-reactions.jsonl", "configs/ops/shadow.yaml", "shadow.feedback_ledger"),
    ("memory/feedback/reaction-mapping.json", "configs/ops/shadow.yaml", "shadow.feedback_mapping"),
    ("memory/feedback/telegram-reactions.jsonl", "configs/feedback/default.yaml", "ledger"),
    ("memory/feedback/reaction-mapping.json", "configs/feedback/default.yaml", "mapping"),
    ("memory/feedback/telegram-reactions.jsonl", "configs/ops/monthly.yaml", "monthly.ledger"),
])
def test_canonical_locations_are_the_configs(span: str, config: str, key: str) -> None:
    assert f"`{span}`" in DOC.read_text()
    value: Any = _config(config)
    for part in key.split("."):
        value = getattr(value, part)
    assert span.split("<", 1)[0].rstrip("/") == str(value).rstrip("/")


def test_readme_links_the_plan() -> None:
    assert "docs/PHASED_ADOPTION_PLAN.md" in (ROOT / "README.md").read_text()


def _readme_blocks(lang: str) -> list[str]:
    return re.findall(rf"(?ms)^```{lang}\n(.*?)^```", (ROOT / "README.md").read_text())


def test_readme_capture_snippet_runs_as_pasted_and_validates(tmp_path: Path) -> None:
    """The README's Python example is what a new user pastes first: it must run and write a run that
    ``tracebridge validate`` passes (it used an undefined ``rendered_prompt`` and a plan of ``[...]``)."""
    (snippet,) = [b for b in _readme_blocks("python") if "Recorder(" in b]
    (tmp_path / "snippet.py").write_text(snippet)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    res = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, capture_output=True, text=True, env=env,
                         timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    res = CliRunner().invoke(app, ["validate", str(tmp_path / "traces"), "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 0 and doc["runs_complete"] == 1 and doc["events_dropped"] == 0, res.output
    assert doc["problems_total"] == 0, doc["problems"]


def _readme_commands(name: str) -> list[list[str]]:
    """``tracebridge NAME ...`` lines of the README's bash blocks, as argv (comments cut)."""
    lines = [ln.split("#", 1)[0].strip() for b in _readme_blocks("bash") for ln in b.splitlines()]
    return [shlex.split(ln) for ln in lines if ln.startswith(f"tracebridge {name} ")]


def test_readme_collect_examples_each_write_a_new_trace_root() -> None:
    """Pasted in order, a second collect of the same episodes into one root is refused (exit 2): the
    README's examples collected default.yaml three times into traces/sim."""
    seen: dict[tuple[str, str], str] = {}
    commands = _readme_commands("collect")
    assert len(commands) >= 3
    for argv in commands:
        config = argv[2]
        out = argv[argv.index("--out") + 1] if "--out" in argv else read_yaml(ROOT / config)["out"]
        key = (read_yaml(ROOT / config)["name"], out.rstrip("/"))
        assert key not in seen, f"{' '.join(argv)}: collects into {out} again (after: {seen[key]})"
        seen[key] = " ".join(argv)


OVERRIDE = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z0-9_]+)+=[^\s|]+$")
OVERRIDE_HOMES = {"configs/export/default.yaml": [], "configs/train/cpu_tiny.yaml": [],
                  "configs/sweep/smoke.yaml": ["bundle=tests/data/train_views"], "configs/ops/shadow.yaml": []}


def test_readme_override_sets_load_as_written() -> None:
    """A span of several ``key=value`` overrides is a set to paste whole: it must load in the config it
    belongs to (``split.ratios.test=0 split.assign.calc=test`` alone exited 2, ratios not summing to 1)."""
    sets = [s.split() for s in _spans((ROOT / "README.md").read_text())]
    sets = [toks for toks in sets if len(toks) > 1 and all(OVERRIDE.match(t) for t in toks)
            and not any(t.split("=", 1)[1].isupper() for t in toks)]  # placeholders: model.path=DIR
    assert len(sets) >= 3
    for toks in sets:
        top = toks[0].split(".", 1)[0]
        (home,) = [c for c in OVERRIDE_HOMES if top in {f.name for f in dataclasses.fields(schema_for(ROOT / c))}]
        try:
            load_config(schema_for(ROOT / home), ROOT / home, [*OVERRIDE_HOMES[home], *toks])
        except ConfigError as exc:
            pytest.fail(f"`{' '.join(toks)}` in README does not load in {home}: {exc}")


def test_demo_bundle_paths_in_configs_and_jobs_are_the_ones_the_readme_makes() -> None:
    """The demo config's and the jobs' launch lines name ``bundle=demo_out/bundle``, a folder nothing makes
    (``make demo`` and the README export to ``demo_out/bundles``): pasted, they failed with no bundle there."""
    made = {argv[argv.index("--out") + 1].rstrip("/") for argv in _readme_commands("export")}
    assert "demo_out/bundles" in made
    named = [(p.relative_to(ROOT), m) for p in [*ROOT.glob("configs/**/*.yaml"), *ROOT.glob("jobs/*.py")]
             for m in re.findall(r"bundle=(?:\$PWD/)?(demo_out/[\w./-]+)", p.read_text())]
    assert named, "the demo launch lines name a bundle"
    assert not [(p, m) for p, m in named if m.rstrip("/") not in made], named


def test_readme_names_every_validate_threshold() -> None:
    """The README gives validate's thresholds and defaults; it named only --stale-after and
    --max-dropped-events of them, so the flags that move the others were found only in --help."""
    (cmd,) = [c for n, c in typer.main.get_command(app).commands.items() if n == "validate"]
    text = (ROOT / "README.md").read_text()
    flags = [o for p in cmd.params for o in p.opts if o.startswith(("--min-", "--max-", "--stale"))]
    assert len(flags) >= 6
    assert [f for f in flags if f"`{f}" not in text] == []
