"""Scheduling units render, install idempotently, and refuse unsafe paths."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tracebridge.ops.schedule import (
    BEGIN,
    END,
    ScheduleError,
    cron_lines,
    install_cron,
    merge_crontab,
    render,
    systemd_units,
)

INFRA = Path(__file__).resolve().parents[2] / "infra"


def test_systemd_units_render_complete():
    units = systemd_units(INFRA, "/srv/tb", "/srv/tb/.venv/bin/tracebridge")
    assert set(units) == {f"tracebridge-{u}.{e}" for u in ("shadow", "weekly", "monthly") for e in ("service", "timer")}
    svc = units["tracebridge-shadow.service"]
    assert "ExecStart=/srv/tb/.venv/bin/tracebridge shadow-cycle --config configs/ops/shadow.yaml" in svc
    assert "WorkingDirectory=/srv/tb" in svc and "@" not in svc
    assert "OnCalendar=*-*-* 02:15:00 UTC" in units["tracebridge-shadow.timer"]
    assert "OnCalendar=Sun *-*-* 03:00:00 UTC" in units["tracebridge-weekly.timer"]
    for name, text in units.items():  # every unit parses as INI sections
        sections = [ln for ln in text.splitlines() if ln.startswith("[")]
        assert "[Unit]" in sections and ("[Service]" in sections if name.endswith("service") else "[Timer]" in sections)


def test_cron_lines_are_valid_five_field_entries():
    block = cron_lines(INFRA, "/srv/tb", "/usr/bin/python3 -m tracebridge.cli")
    body = [ln for ln in block.splitlines() if ln and not ln.startswith("#") and "=" not in ln.split()[0]]
    assert len(body) == 3
    for ln in body:
        fields = ln.split()
        assert len(fields) > 5 and all(f[0].isdigit() or f == "*" for f in fields[:5])
    assert "shadow-cycle --config configs/ops/shadow.yaml" in block


def test_merge_crontab_replaces_an_earlier_install():
    block = f"{BEGIN}\n0 1 * * * new\n{END}\n"
    old = f"MAILTO=me\n5 5 * * * backup\n{BEGIN}\n0 1 * * * old\n{END}\n"
    merged = merge_crontab(old, block)
    assert merged == "MAILTO=me\n5 5 * * * backup\n" + block
    assert merge_crontab(merged, block) == merged
    assert merge_crontab("", block) == block


@pytest.mark.parametrize("workdir, bin_", [("relative/dir", "/bin/tb"), ("/srv/my dir", "/bin/tb"),
                                            ("/srv/tb", "/bin/tb%i"), ("/srv/$HOME", "/bin/tb")])
def test_unsafe_paths_are_refused(workdir, bin_):
    with pytest.raises(ScheduleError):
        render("x @WORKDIR@ @BIN@", workdir, bin_)


def test_install_cron_through_the_crontab_program(tmp_path, monkeypatch):
    table = tmp_path / "table"
    fake = tmp_path / "bin" / "crontab"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\nif [ \"$1\" = -l ]; then cat {table} 2>/dev/null || exit 1; "
                    f"else cat > {table}; fi\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    block = cron_lines(INFRA, "/srv/tb", "/srv/tb/bin/tracebridge")
    install_cron(block)
    table.write_text("MAILTO=ops\n" + table.read_text())
    install_cron(block)
    text = table.read_text()
    assert text.startswith("MAILTO=ops\n") and text.count(BEGIN) == 1 and "shadow-cycle" in text


def test_install_cron_never_replaces_a_crontab_it_could_not_read(tmp_path, monkeypatch):
    # `crontab -l` failing for another reason than "no crontab for USER" was read as an empty table: the
    # install replaced the user's whole crontab (their backups, their other jobs) with the tracebridge block
    table = tmp_path / "table"
    table.write_text("0 1 * * * /usr/local/bin/backup\n")
    fake = tmp_path / "bin" / "crontab"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\nif [ \"$1\" = -l ]; then echo 'crontab: cannot open spool: Permission denied' >&2; "
                    f"exit 1; else cat > {table}; fi\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ScheduleError, match="crontab -l failed .*Permission denied.*left as it is"):
        install_cron(cron_lines(INFRA, "/srv/tb", "/srv/tb/bin/tracebridge"))
    assert table.read_text() == "0 1 * * * /usr/local/bin/backup\n"
    # "no crontab for USER" (cronie, macOS) is an empty table: the block is the whole new one
    fake.write_text(f"#!/bin/sh\nif [ \"$1\" = -l ]; then echo 'no crontab for ops' >&2; exit 1; "
                    f"else cat > {table}; fi\n")
    install_cron(cron_lines(INFRA, "/srv/tb", "/srv/tb/bin/tracebridge"))
    assert table.read_text().startswith(BEGIN)


def test_the_timers_random_delay_is_within_the_reviews_slice_tolerance():
    # the review pairs each 24-hour slice with a daily cycle: a delay beyond its tolerance could leave a slice empty
    import re

    from tracebridge.config import load_config
    from tracebridge.ops.config import OpsConfig

    timer = (INFRA / "systemd" / "tracebridge-shadow.timer").read_text()
    delay_min = int(re.search(r"^RandomizedDelaySec=(\d+)m$", timer, re.MULTILINE).group(1))
    review = load_config(OpsConfig, INFRA.parent / "configs/ops/shadow.yaml").review
    assert delay_min < review.slice_tolerance_min


def test_install_into_a_unit_dir_that_is_a_file_exits_2_and_a_reinstall_replaces_each_unit_whole(tmp_path):
    """``--unit-dir`` a file (or under one) was a FileExistsError traceback, exit 1; units were written in place,
    so a reinstall killed mid-write left a cut unit (a reader holding the old one saw it change under it)."""
    import json

    from typer.testing import CliRunner

    from tracebridge.cli import app

    def install(unit_dir, bin_="/srv/tb/bin/tracebridge"):
        return CliRunner().invoke(app, ["ops", "install-schedule", "--install", "--workdir", str(INFRA.parent),
                                        "--bin", bin_, "--unit-dir", str(unit_dir), "--json"])

    (tmp_path / "afile").write_text("x")
    for bad in (tmp_path / "afile", tmp_path / "afile" / "units"):
        r = install(bad)
        assert r.exit_code == 2, r.output
        assert json.loads(r.stdout)["error"] == f"--unit-dir {bad}: {tmp_path / 'afile'} is a file, not a folder"
    units = tmp_path / "units"
    assert install(units).exit_code == 0
    svc = units / "tracebridge-shadow.service"
    (tmp_path / "held").hardlink_to(svc)
    before = svc.read_text()
    assert install(units, "/opt/tb/bin/tracebridge").exit_code == 0
    assert (tmp_path / "held").read_text() == before and "/opt/tb/bin/tracebridge" in svc.read_text()
    assert not [p.name for p in units.iterdir() if ".tmp." in p.name]


def _shadow_line(block: str) -> str:
    (line,) = [ln for ln in block.splitlines() if "shadow-cycle" in ln and not ln.startswith("#")]
    return line


def test_a_cron_reinstall_keeps_the_feedback_env_on_the_shadow_cycle_line():
    block = cron_lines(INFRA, "/srv/tb", "/srv/tb/.venv/bin/tracebridge")
    edited = f"MAILTO=me\n{BEGIN}\n15 2 * * * cd /srv/tb && . ~/.config/tracebridge/feedback.env && tb\n{END}\n"
    merged = merge_crontab(merge_crontab(edited, block), block)
    assert "/.config/tracebridge/feedback.env" in _shadow_line(merged)
    assert "%" not in _shadow_line(merged)  # cron turns % into a newline


@pytest.mark.parametrize("salt_line", ["TRACEBRIDGE_FEEDBACK_SALT=s3cret", None])
def test_the_cron_shadow_line_exports_the_feedback_env_to_the_command(tmp_path, salt_line):
    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".config" / "tracebridge").mkdir(parents=True)
    work.mkdir()
    if salt_line:  # a plain KEY=value line, as the systemd unit's EnvironmentFile reads it
        (home / ".config" / "tracebridge" / "feedback.env").write_text(salt_line + "\n")
    fake = tmp_path / "tb"
    fake.write_text('#!/bin/sh\necho "salt=${TRACEBRIDGE_FEEDBACK_SALT-unset} args=$*"\n')
    fake.chmod(0o755)
    cmd = _shadow_line(cron_lines(INFRA, str(work), str(fake))).split(None, 5)[5]
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    res = subprocess.run(["/bin/sh", "-c", cmd], env=env, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    log = (work / "logs" / "shadow-cycle.log").read_text()
    assert f"salt={'s3cret' if salt_line else 'unset'} args=shadow-cycle" in log


def test_a_missing_crontab_or_systemctl_is_a_setup_error_before_anything_is_written(tmp_path, monkeypatch):
    """No ``crontab`` program exited 1 (as if the install had run and failed) where the exit-code table makes a
    missing program a setup error (2); ``--enable`` without ``systemctl`` wrote the units, then died on a
    FileNotFoundError traceback. Both exit 2 now, naming the program, nothing written."""
    import json

    from typer.testing import CliRunner

    from tracebridge.cli import app

    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # neither program on it
    base = ["ops", "install-schedule", "--install", "--workdir", str(INFRA.parent), "--bin", "/srv/tb/bin/tracebridge"]
    r = CliRunner().invoke(app, [*base, "--kind", "cron", "--json"])
    assert r.exit_code == 2, r.output
    assert json.loads(r.stdout)["error"] == "no crontab program on PATH; use --kind systemd or install cron"
    with pytest.raises(ScheduleError, match="no crontab program on PATH"):
        install_cron("x\n")
    units = tmp_path / "units"
    r = CliRunner().invoke(app, [*base, "--enable", "--unit-dir", str(units), "--json"])
    assert r.exit_code == 2, r.output
    assert json.loads(r.stdout)["error"].startswith("no systemctl program on PATH; install without --enable")
    assert not units.exists()
    r = CliRunner().invoke(app, [*base, "--unit-dir", str(units), "--json"])  # without --enable: no systemctl needed
    assert r.exit_code == 0 and len(json.loads(r.stdout)["installed"]) == 6, r.output
