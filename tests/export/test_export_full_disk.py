"""``export`` on a full disk (a file size limit stands in: ``ulimit -f``, writes past it fail with EFBIG):
exit 1 naming the file it could not write, nothing left in ``--out`` (no bundle, no temporary folder),
and the next export writes the bundle. Before, the error named no file ("export stopped, nothing
published: [Errno 27] File too large")."""

from __future__ import annotations

import json
import sys

from tracebridge.config import load_config
from tracebridge.export.config import ExportConfig
from tracebridge.export.pipeline import export_traces
from tracebridge.testing.procs import run_in_repo


def test_a_full_disk_names_the_file_leaves_nothing_and_the_next_export_recovers(
    sim_traces, tmp_path
):
    out = tmp_path / "bundles"
    cmd = f'ulimit -f 64; exec "{sys.executable}" -m tracebridge.cli export "{sim_traces}" --out "{out}" --json'
    res = run_in_repo(["bash", "-c", cmd])
    assert res.returncode == 1, res.stderr
    err = json.loads(res.stdout)["error"]
    assert (
        err.startswith("export stopped, nothing published: [Errno 27] File too large: ")
        and f"'{out}/.bundle-" in err
    )
    assert list(out.iterdir()) == []  # neither a bundle nor the temporary folder it was written in
    again = export_traces(sim_traces, out, load_config(ExportConfig, None, []))
    assert again.passed and [p.name for p in out.iterdir()] == [again.manifest.bundle_id]
