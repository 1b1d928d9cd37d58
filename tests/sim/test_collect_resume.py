"""Resuming a collection from its ledger (``tracebridge.sim.resume``): an episode killed after its run
closed but before its ``done`` line, OS-entropy random seeds, a torn ledger line, and a root written
without a ledger (still refused). The kill itself is tested in ``test_collect_killed.py``."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import orjson
from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.config import load_config
from tracebridge.sim.collect import collect
from tracebridge.sim.config import CollectConfig
from tracebridge.sim.hashing import root_content_hash
from tracebridge.sim.resume import ASIDE, LEDGER

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "collect" / "smoke.yaml"
SMALL = ["workers=1", "families=[calc]"]  # 2 mixes × 2 failure profiles × 2 seeds


def _refs(root: Path) -> Counter[str]:
    return Counter(json.loads((d / "session.json").read_text())["source"]["ref"]
                   for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def _cut_ledger(root: Path, keep: int) -> list[dict]:
    """The root as a kill after the ledger's first ``keep`` lines leaves it: half of the next line
    written, and no run of an episode not started by then (workers=1: one episode at a time)."""
    lines = (root / LEDGER).read_bytes().splitlines(keepends=True)
    (root / LEDGER).write_bytes(b"".join(lines[:keep]) + lines[keep][: len(lines[keep]) // 2])
    entries = [orjson.loads(x) for x in lines]
    for e in entries[keep + 1:]:
        shutil.rmtree(root / e["run_id"], ignore_errors=True)
    return entries


def test_a_run_closed_but_not_marked_done_is_set_aside_and_run_again(tmp_path):
    cfg = load_config(CollectConfig, SMOKE, SMALL)
    whole = collect(cfg, str(tmp_path / "whole"))
    out = tmp_path / "cut"
    collect(cfg, str(out))
    entries = _cut_ledger(out, 5)  # started/done × 2, started of the third: its run closed, its done line torn
    third = entries[4]["run_id"]
    assert (out / third / "session.json").is_file()
    again = collect(cfg, str(out))
    assert again.resumed == 2 and again.set_aside == [str(out / ASIDE / third)]
    assert again.episodes == whole.episodes == 8 and set(_refs(out).values()) == {1}
    assert root_content_hash(out) == root_content_hash(tmp_path / "whole")
    assert again.verdicts == whole.verdicts and again.by_family == whole.by_family


def test_random_seeds_from_os_entropy_are_the_same_on_resume_and_new_on_a_later_pass(tmp_path):
    cfg = load_config(CollectConfig, SMOKE, [*SMALL, "seeds.fixed=[]", "seeds.random=3", "seeds.random_source=null"])
    first = collect(cfg, str(tmp_path))
    _cut_ledger(tmp_path, 3)  # killed in its second episode: its started line written, its done line torn
    again = collect(cfg, str(tmp_path))
    assert again.resumed == 1 and len(again.set_aside) == 1 and again.seeds == first.seeds and again.episodes == 12
    assert len(_refs(tmp_path)) == 12 and set(_refs(tmp_path).values()) == {1}
    more = collect(cfg, str(tmp_path))  # the pass finished: a new one draws new seeds, as before
    assert more.resumed == 0 and not set(more.seeds["random"]) & set(first.seeds["random"])
    assert len(_refs(tmp_path)) == 24 and set(_refs(tmp_path).values()) == {1}


def test_a_root_written_without_a_ledger_is_still_refused(tmp_path):
    runner = CliRunner()
    out = tmp_path / "traces"
    assert runner.invoke(app, ["collect", str(SMOKE), *SMALL, "--out", str(out)]).exit_code == 0
    (out / LEDGER).unlink()  # as a collect before the ledger wrote it
    res = runner.invoke(app, ["collect", str(SMOKE), *SMALL, "--out", str(out)])
    assert res.exit_code == 2 and "would write them twice" in res.output, res.output
    assert len(_refs(out)) == 8


def test_runs_of_these_episodes_the_ledger_does_not_list_are_refused(tmp_path):
    runner = CliRunner()
    old, out = tmp_path / "old", tmp_path / "traces"
    assert runner.invoke(app, ["collect", str(SMOKE), *SMALL, "seeds.fixed=[0]", "--out", str(old)]).exit_code == 0
    assert runner.invoke(app, ["collect", str(SMOKE), *SMALL, "seeds.fixed=[1]", "--out", str(out)]).exit_code == 0
    for d in old.iterdir():  # seed 0's runs copied in beside a ledger that knows only seed 1's
        if d.is_dir() and not d.name.startswith("."):
            shutil.copytree(d, out / d.name)
    res = runner.invoke(app, ["collect", str(SMOKE), *SMALL, "--out", str(out)])
    assert res.exit_code == 2 and "4 complete run(s) of these episodes" in res.output, res.output
    assert len(_refs(out)) == 8 and set(_refs(out).values()) == {1}


def test_a_rerun_with_other_settings_under_the_same_names_is_refused(tmp_path):
    """Killed, then rerun with a changed skill (same collection, mix and profile names): before, the rerun
    kept the first settings' episodes and ran the rest with the new ones, one root of two configs."""
    runner = CliRunner()
    out = tmp_path / "traces"
    assert runner.invoke(app, ["collect", str(SMOKE), *SMALL, "--out", str(out)]).exit_code == 0
    _cut_ledger(out, 5)
    before = sorted(p.name for p in out.iterdir())
    res = runner.invoke(app, ["collect", str(SMOKE), *SMALL, "mixes.average.skill.bad_args=0.5", "--out", str(out)])
    assert res.exit_code == 2 and "collected with other settings" in res.output, res.output
    assert sorted(p.name for p in out.iterdir()) == before  # nothing run, nothing moved
    res = runner.invoke(app, ["collect", str(SMOKE), *SMALL, "--out", str(out)], env={"COLUMNS": "200"})  # resumes
    assert res.exit_code == 0 and "2 collected by an earlier pass, 6 run now; 1 interrupted run(s)" in res.output, \
        res.output


def test_runs_set_aside_are_removed_once_their_episodes_are_collected_again_and_the_rest_listed(tmp_path):
    """Before, ``.collect.interrupted/`` only grew: every resumed pass left the partial runs it had set aside
    (superseded by the runs it wrote for their episodes) there for good, and nothing said what was in it."""
    runner = CliRunner()
    out = tmp_path / "traces"
    assert runner.invoke(app, ["collect", str(SMOKE), *SMALL, "--out", str(out)]).exit_code == 0
    other = {"state": "started", "ref": "other-collection/calc/x/none/1", "run_id": "20250101T000000-0a1b2c3d",
             "spec": "0" * 16}  # an episode of another collection, set aside by its own interrupted pass
    (out / LEDGER).write_bytes(orjson.dumps(other) + b"\n" + (out / LEDGER).read_bytes())
    entries = _cut_ledger(out, 6)  # started/done × 2 (after that line), started of the third: its done line torn
    third = entries[5]["run_id"]
    for name in (other["run_id"], "copied-by-hand"):  # a folder the ledger does not name stays too
        (out / ASIDE / name).mkdir(parents=True)
        (out / ASIDE / name / "events.jsonl").write_text("{}\n")
    res = runner.invoke(app, ["collect", str(SMOKE), *SMALL, "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout[res.stdout.index("{"):])
    assert d["set_aside"] == [str(out / ASIDE / third)] and d["interrupted_removed"] == [str(out / ASIDE / third)]
    assert d["interrupted_left"] == [str(out / ASIDE / other["run_id"]), str(out / ASIDE / "copied-by-hand")]
    assert sorted(p.name for p in (out / ASIDE).iterdir()) == [other["run_id"], "copied-by-hand"]
    assert len(_refs(out)) == 8 and set(_refs(out).values()) == {1}  # the third episode: its new run, once


def test_the_interrupted_folder_goes_when_every_run_in_it_was_collected_again(tmp_path):
    cfg = load_config(CollectConfig, SMOKE, SMALL)
    collect(cfg, str(tmp_path))
    _cut_ledger(tmp_path, 5)
    again = collect(cfg, str(tmp_path))
    assert len(again.interrupted_removed) == 1 and again.interrupted_left == [] and not (tmp_path / ASIDE).exists()
    assert again.to_dict()["interrupted_removed"] == again.set_aside  # kept keys; the new ones added
    later = collect(cfg, str(tmp_path))  # a pass with nothing to resume or remove
    assert later.interrupted_removed == [] and later.interrupted_left == []


def test_a_superseded_run_that_cannot_be_removed_is_left_and_listed_and_the_pass_stands(tmp_path, monkeypatch):
    """A run set aside that cannot be removed (a file in it the user cannot delete; root ignores modes, so the
    failure is made here): the pass ends with its summary, the run listed as left, not with a traceback."""
    import errno
    from types import SimpleNamespace

    from tracebridge.sim import resume as resume_module

    def rmtree(path, *args, **kw):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    cfg = load_config(CollectConfig, SMOKE, SMALL)
    collect(cfg, str(tmp_path))
    third = _cut_ledger(tmp_path, 5)[4]["run_id"]
    monkeypatch.setattr(resume_module, "shutil", SimpleNamespace(rmtree=rmtree))
    again = collect(cfg, str(tmp_path))
    assert again.passed and again.episodes == 8 and again.resumed == 2
    assert again.interrupted_removed == [] and again.interrupted_left == [str(tmp_path / ASIDE / third)]
    assert (tmp_path / ASIDE / third).is_dir()


def test_runs_an_earlier_pass_set_aside_go_once_their_episodes_are_collected(tmp_path):
    """A root resumed before this change (or twice interrupted) holds runs an earlier pass set aside whose
    episodes were collected since: the next pass removes them too, though it runs nothing itself."""
    cfg = load_config(CollectConfig, SMOKE, SMALL)
    collect(cfg, str(tmp_path))
    first = orjson.loads((tmp_path / LEDGER).read_bytes().splitlines()[0])  # episode 1: collected
    old = {"state": "started", "ref": first["ref"], "run_id": "20250101T000000-0a1b2c3d", "spec": first["spec"]}
    (tmp_path / LEDGER).write_bytes(orjson.dumps(old) + b"\n" + (tmp_path / LEDGER).read_bytes())
    (tmp_path / ASIDE / old["run_id"]).mkdir(parents=True)  # its partial run, set aside by that earlier pass
    (tmp_path / ASIDE / old["run_id"] / "events.jsonl").write_text("{}\n")
    again = collect(cfg, str(tmp_path))
    assert again.resumed == 8 and again.set_aside == []
    assert again.interrupted_removed == [str(tmp_path / ASIDE / old["run_id"])] and again.interrupted_left == []
    assert not (tmp_path / ASIDE).exists() and (tmp_path / first["run_id"] / "session.json").is_file()


def test_an_episode_collected_again_is_its_latest_run_on_every_later_pass(tmp_path):
    """A collected run that lost its session.json is run again by the next pass. Before, the ledger's first
    ``done`` line still named the lost run, so every later pass ran the episode once more and set aside the
    good run the pass before had written (and its second ``done`` line counted as unreadable)."""
    cfg = load_config(CollectConfig, SMOKE, SMALL)
    collect(cfg, str(tmp_path))
    first = orjson.loads((tmp_path / LEDGER).read_bytes().splitlines()[0])
    (tmp_path / first["run_id"] / "session.json").unlink()
    again = collect(cfg, str(tmp_path))
    assert again.resumed == 7 and again.set_aside == again.interrupted_removed == [str(tmp_path / ASIDE / first["run_id"])]
    runs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith("."))
    for _ in range(2):
        later = collect(cfg, str(tmp_path))
        assert later.resumed == 8 and later.set_aside == [] and later.episodes == 8
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")) == runs
    assert len(_refs(tmp_path)) == 8 and set(_refs(tmp_path).values()) == {1}
