"""The ``window`` command: an ephemeral GPU cluster for one sweep (ray up → submit → wait → pull →
ray down, within hours / dollars). Split from ``tracebridge.cli.cluster``, whose helpers it shares.
Heavy imports live inside the functions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tracebridge.cli.app import app, check_out_dir, config_errors, print_json
from tracebridge.cli.cluster import (
    ClusterSetOpt,
    JsonOpt,
    _counted,
    _echo_log,
    _plan,
    _project_root,
)

# cluster keys `window` sets itself (the forwarded Jobs API of the cluster it brings up), and what to set instead
_WINDOW_SETS = {"kind": "its cluster is remote", "address": "it is the forwarded Jobs API: set window.dashboard_port",
                "token_file": "set window.token_file"}


def _window_cluster(scfg: Any, sets: list[str]) -> Any:
    """The ``ClusterConfig`` a window's job is submitted with: the sweep's cluster with the ``--cluster-set``
    overrides, reaching the Jobs API the window forwards (``kind``, ``address``, ``token_file``: set here,
    so overriding them is an error rather than a value silently lost).

    Raises:
        tracebridge.config.ConfigError: every bad override.
    """
    from dataclasses import replace

    from tracebridge.cluster.config import cluster_from_spec
    from tracebridge.config import ConfigError

    taken = [f"--cluster-set {s}: the window sets {k} itself; {_WINDOW_SETS[k]}"
             for s in sets if (k := s.partition("=")[0].strip()) in _WINDOW_SETS]
    try:
        base = cluster_from_spec(scfg.cluster, [s for s in sets if s.partition("=")[0].strip() not in _WINDOW_SETS])
    except ConfigError as exc:
        raise ConfigError([*taken, *exc.problems]) from exc
    if taken:
        raise ConfigError(taken)
    return replace(base, kind="remote", address=f"http://127.0.0.1:{scfg.window.dashboard_port}",
                   token_file=scfg.window.token_file, python=base.python or "python")


def _token_mount_problems(cluster_yaml: Path, launcher: dict[str, Any], token_file: str) -> list[str]:
    """Whether the launcher YAML ships ``window.token_file`` as the head's token: a ``file_mounts`` entry whose
    destination is an ``auth_token`` must have it as its source. Another file there started the head with
    another token, which refused every request of the window (after ``connect_timeout_s``, as "did not
    answer", with the GPUs up). A launcher that ships no token is not checked here."""
    from tracebridge.cluster.config import expand

    shipped = {dest: src for dest, src in (launcher.get("file_mounts") or {}).items() if "auth_token" in str(dest)}
    if not shipped or any(expand(str(src)) == expand(token_file) for src in shipped.values()):
        return []
    dest, src = next(iter(shipped.items()))
    return [(f"window.token_file={token_file}: {cluster_yaml}:file_mounts ships {src} as the head's token ({dest}), "
             "so the head would refuse the window's requests; set window.token_file to that file, or make "
             "file_mounts ship this one")]


@app.command()
def window(
    config: Annotated[Path, typer.Argument(help="A configs/sweep YAML (its window block: prices, port, token file).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key.sub=value overrides of the sweep.")] = None,
    cluster: Annotated[Path, typer.Option(help="Ray cluster launcher YAML (infra/aws-gpu.yaml, infra/gcp-gpu.yaml).")] = Path("infra/aws-gpu.yaml"),
    max_hours: Annotated[float, typer.Option(help="Tear down after this many hours, whatever happens.")] = 4.0,
    max_usd: Annotated[float, typer.Option(help="Tear down once the worst-case cost reaches this (0 = no dollar cap).")] = 0.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and cost estimate; start nothing.")] = False,
    cluster_set: ClusterSetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Ephemeral GPU window: ray up → submit → wait → pull → ray down (in every outcome: also Ctrl-C, SIGTERM,
    SIGHUP); exit 0 only when the sweep succeeded, its report verified and ray down succeeded, 130 when
    interrupted. --cluster-set overrides keys of the sweep's cluster config, except those the window sets itself (kind, address,
    token_file: from window.dashboard_port and window.token_file)."""
    from tracebridge.cluster.config import expand
    from tracebridge.cluster.head import ensure_token
    from tracebridge.cluster.window import load_launcher, plan_window, run_window, sweep_work
    from tracebridge.config import ConfigError, to_dict
    from tracebridge.sweep.config import load_sweep_config

    ov, root = list(overrides or []), _project_root()
    with config_errors():
        scfg = load_sweep_config(str(config), ov)
        ccfg = _window_cluster(scfg, list(cluster_set or []))
        launcher = load_launcher(cluster)
        token = _token_mount_problems(cluster, launcher, scfg.window.token_file)
        try:
            wplan = plan_window(cluster, launcher, scfg.window, max_hours, max_usd)
        except ConfigError as exc:  # every problem at once
            raise ConfigError([*token, *exc.problems]) from exc
        if token:
            raise ConfigError(token)
        splan = _plan(config, ov, ccfg, root, str(cluster))  # the job records the launcher YAML as its cluster
    check_out_dir(Path(scfg.window.reports_dir), "window.reports_dir")  # before a cluster is paid for
    if dry_run:
        res = {"plan": wplan.to_dict(), "sweep_id": splan.sweep_id, "trials": splan.trials,
               "trained_trials": splan.trained_trials, "dry_run": True,
               "cluster": to_dict(ccfg)}
        if json_out:
            print_json(res)
        else:
            typer.echo("\n".join([*wplan.commands, f"sweep {splan.sweep_id}: {_counted(splan)}",
                                  (f"cost: ${wplan.base_usd:.2f}/h idle (head + min workers), "
                                   f"${wplan.hourly_usd:.2f}/h worst case (every worker type at max_workers); "
                                   f"cap {wplan.cap_hours:g} h; at most ${wplan.max_usd_estimate:.2f}"),
                                  *(f"no price for {u}" for u in wplan.unpriced)]))
        raise typer.Exit(0)
    ensure_token(expand(scfg.window.token_file))
    res = run_window(wplan, scfg.window, sweep_work(wplan, splan, ccfg, root, scfg.window,
                                                   on_log=_echo_log))  # stderr, also under --json
    if res.get("teardown_error"):  # on stderr even under --json: GPUs may be left running
        typer.echo(f"error: {res['teardown_error']}", err=True)
    if json_out:
        print_json(res)
    else:
        typer.echo(f"window: {res['outcome']} after {res['wall_s']:.0f}s (at most ${res['cost_usd_max']:.2f})"
                   + (f"; {res['error']}" if res.get("error") else "") + (f"; report {res['report']}" if res.get("report") else ""))
    code = {"succeeded": 0, "interrupted": 130}.get(res["outcome"], 1)
    raise typer.Exit(1 if code == 0 and not res["down_ok"] else code)  # before: 0 with the cluster maybe up
