"""Scheduling units: render the templates in ``infra/systemd/`` and ``infra/cron/`` and install them.

Templates carry two tokens: ``@WORKDIR@`` (the checkout the commands run in; configs are
relative to it) and ``@BIN@`` (the ``tracebridge`` executable, absolute). Rendering is pure;
installing writes the systemd user units into a folder (default ``~/.config/systemd/user``) or
merges the cron lines into the user's crontab between marker lines, replacing an earlier
install instead of adding a second copy.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tracebridge.capture.writer import write_atomic

UNITS = ("tracebridge-shadow", "tracebridge-weekly", "tracebridge-monthly")
CRON_FILE = "tracebridge.cron"
BEGIN, END = "# >>> tracebridge schedule >>>", "# <<< tracebridge schedule <<<"
CRON_MISSING = "use --kind systemd or install cron"
SYSTEMCTL_MISSING = "install without --enable and load the units with your service manager, or use --kind cron"
_UNSAFE = re.compile(r"[\s%'\"\\$`]")


class ScheduleError(RuntimeError):
    """A schedule could not be rendered or installed; the message says why."""


class MissingProgram(ScheduleError):
    """A program the install needs (``crontab``, ``systemctl``) is not on PATH: a setup error, found before
    anything is written."""


def require_program(name: str, instead: str) -> str:
    """The path of program ``name``.

    Raises:
        MissingProgram: it is not on PATH (``instead``: what to do about it).
    """
    exe = shutil.which(name)
    if exe is None:
        raise MissingProgram(f"no {name} program on PATH; {instead}")
    return exe


def default_bin() -> str:
    """The tracebridge executable next to this Python, else ``python -m tracebridge.cli``."""
    exe = Path(sys.executable).parent / "tracebridge"
    return str(exe) if exe.is_file() else f"{sys.executable} -m tracebridge.cli"


def _check_path(name: str, value: str) -> None:
    parts = value.split(" ") if name == "bin" else [value]
    for part in parts:
        if not part or _UNSAFE.search(part):
            raise ScheduleError(f"--{name} {value!r}: paths with spaces, quotes, '%' or '$' cannot go into "
                                "unit files or crontabs safely; use a path without them (a symlink)")
    if not Path(parts[0]).is_absolute():
        raise ScheduleError(f"--{name} {value!r}: must be an absolute path")


def render(template: str, workdir: str, bin_: str) -> str:
    """Fill in ``@WORKDIR@`` and ``@BIN@``.

    Raises:
        ScheduleError: a path is relative or unsafe in a unit file / crontab, or a token is left.
    """
    _check_path("workdir", workdir)
    _check_path("bin", bin_)
    out = template.replace("@WORKDIR@", workdir).replace("@BIN@", bin_)
    left = re.findall(r"@[A-Z]+@", out)
    if left:
        raise ScheduleError(f"unknown template tokens: {', '.join(sorted(set(left)))}")
    return out


def systemd_units(infra: Path, workdir: str, bin_: str) -> dict[str, str]:
    """Rendered ``.service`` and ``.timer`` files by file name."""
    out = {}
    for unit in UNITS:
        for ext in ("service", "timer"):
            src = infra / "systemd" / f"{unit}.{ext}"
            if not src.is_file():
                raise ScheduleError(f"{src}: template missing (run from the checkout or pass --workdir)")
            out[src.name] = render(src.read_text(), workdir, bin_)
    return out


def cron_lines(infra: Path, workdir: str, bin_: str) -> str:
    """The rendered cron block, between the marker lines."""
    src = infra / "cron" / CRON_FILE
    if not src.is_file():
        raise ScheduleError(f"{src}: template missing (run from the checkout or pass --workdir)")
    return f"{BEGIN}\n{render(src.read_text(), workdir, bin_).rstrip()}\n{END}\n"


def merge_crontab(current: str, block: str) -> str:
    """The user's crontab with the tracebridge block added, or replacing an earlier one (pure)."""
    lines, out, inside = current.splitlines(), [], False
    for ln in lines:
        if ln.strip() == BEGIN:
            inside = True
            continue
        if ln.strip() == END:
            inside = False
            continue
        if not inside:
            out.append(ln)
    while out and not out[-1].strip():
        out.pop()
    return ("\n".join(out) + "\n" if out else "") + block


def install_systemd(units: dict[str, str], unit_dir: Path) -> list[Path]:
    """Write the units, each atomically (a reinstall killed mid-write left a cut unit for systemd to load);
    return their paths (enabling is the operator's ``systemctl`` call)."""
    unit_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in units.items():
        p = unit_dir / name
        write_atomic(p, text.encode())
        paths.append(p)
    return paths


def enable_commands(user: bool = True) -> list[list[str]]:
    """The systemctl calls that load and start the timers."""
    base = ["systemctl", "--user"] if user else ["systemctl"]
    return [base + ["daemon-reload"]] + [base + ["enable", "--now", f"{u}.timer"] for u in UNITS]


def install_cron(block: str) -> str:
    """Merge the block into the user's crontab through the ``crontab`` program; return the new one.

    Raises:
        MissingProgram: no ``crontab`` program.
        ScheduleError: it refused the new table.
    """
    exe = require_program("crontab", CRON_MISSING)
    cur = subprocess.run([exe, "-l"], capture_output=True, text=True, check=False)
    why = cur.stderr.strip()
    if cur.returncode != 0 and why and not re.search(r"no crontab|no such file", why, re.IGNORECASE):
        # not "no crontab for USER": the table exists but could not be read; replacing it with only our block
        # deleted every other line of the user's crontab
        raise ScheduleError(f"crontab -l failed (exit {cur.returncode}: {why[:300]}): the current crontab could not "
                            "be read, so it was left as it is (installing would have replaced its other lines)")
    current = cur.stdout if cur.returncode == 0 else ""  # no crontab yet
    new = merge_crontab(current, block)
    res = subprocess.run([exe, "-"], input=new, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise ScheduleError(f"crontab refused the table: {res.stderr.strip()}")
    return new
