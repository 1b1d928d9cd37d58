"""``tracebridge pull``: a sweep's report from storage, by submission id, sweep id (asked of the
cluster), URI or folder, with its manifest hashes verified. Heavy imports live inside the functions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tracebridge.cli.app import (
    EXIT_FAILED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    app,
    check_out_dir,
    config_errors,
    fail,
    print_json,
)
from tracebridge.cli.cluster import ClusterOpt, ClusterSetOpt, JsonOpt, _cluster_fail
from tracebridge.cli.export import StorageConfigOpt


def _pull_source(source: str, cluster: str, sets: list[str] | None) -> tuple[str, str, dict[str, str]]:
    """``(uri, folder name, expect)`` of what ``pull`` fetches: a URI or folder as given (nothing expected of
    its manifest); a name without ``/`` is tried as a submission id or sweep id on the cluster
    (``_job_report``), then as a folder here; when it is neither, exit 2 saying both were tried. A head that
    does not answer exits 3 before the folder is tried: the name may still be a job's."""
    from tracebridge.cluster.client import ClusterError, ClusterUnreachable
    from tracebridge.cluster.config import cluster_from_spec
    from tracebridge.cluster.submit import open_cluster

    if "/" in source or "://" in source:
        return source, _folder_name(source), {}
    with config_errors():
        cfg = cluster_from_spec(cluster, list(sets or []))
    try:
        return _job_report(open_cluster(cfg, start=False).client, source)
    except ClusterUnreachable as exc:
        _cluster_fail(exc)
    except ClusterError as exc:  # no head, or no such job or sweep on it
        if Path(source).is_dir():
            return source, _folder_name(source), {}
        fail(f"pull {source}: tried as a job: {exc}; then as a report folder: no such folder {Path(source).resolve()}. "
             f"Give a submission id (see `tracebridge list`), a sweep id, or a report URI / folder (./{source})")


def _folder_name(source: str) -> str:
    """The folder under ``--out`` that the report at ``source`` goes to: the last name of its path (resolved,
    for a local one: ``.`` and ``./`` are the current folder's name). A source with no such name (``/``,
    ``s3://bucket/x/..``) exits 2: its report would replace ``--out`` itself, every report in it deleted."""
    from tracebridge.sweep.storage import is_local, local_path

    name = local_path(source).resolve().name if is_local(source) else source.rstrip("/").rsplit("/", 1)[-1]
    if name in ("", ".", ".."):
        fail(f"pull {source}: no folder name to put its report under --out by (its report would replace the "
             "--out folder itself); give the report's own folder or URI (s3://bucket/prefix/reports/<sweep id>)")
    return name


def _check_replaceable(dest: Path, uri: str) -> None:
    """Exit 2 when ``dest``, which a verified pull replaces, holds something that is no report (a file, or a
    folder with files and none of ``REPORT_FILES``): ``pull s3://b/results --out .`` replaced ./results; or
    when it lies inside the local report folder ``uri``: the copy copied itself into itself until its path
    was too long (``pull ./ --out sub`` from a report folder)."""
    from tracebridge.cluster.submit import REPORT_FILES
    from tracebridge.sweep.storage import is_local, local_path

    if is_local(uri) and dest.resolve().is_relative_to(src := local_path(uri).resolve()) and dest.resolve() != src:
        fail(f"{dest}: inside the report folder {src} it would be pulled from; give an --out outside it")

    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())
                          and not any((dest / f).is_file() for f in REPORT_FILES)):
        fail(f"{dest}: there already, and not a report (no {', '.join(REPORT_FILES)}), so the pull would replace "
             "it; move it, or give another --out")


def _job_report(client: Any, source: str) -> tuple[str, str, dict[str, str]]:
    """``_pull_source`` of a submission id (that job's report, which must be the one that job wrote) or a
    sweep id (the report its latest attempt that pushed one left at the sweep's report URI).

    Raises:
        ClusterError: ``source`` is neither a job nor a sweep on the cluster (``ClusterUnreachable``: the
            head did not answer).
    """
    from tracebridge.cluster.client import (
        TERMINAL,
        ClusterError,
        ClusterUnreachable,
        job_info,
        list_jobs,
    )

    try:
        info = job_info(client, source)
    except ClusterUnreachable:
        raise
    except ClusterError as exc:  # not a job: a sweep id names the jobs of its attempts
        runs = [j for j in list_jobs(client) if j["sweep_id"] == source]
        if not runs:
            raise ClusterError(f"{exc}; no sweep {source!r} either") from exc
        meta = job_info(client, runs[-1]["submission_id"])["metadata"]
        return meta["report_uri"], source, {k: meta.get(k, "") for k in ("sweep_id", "bundle_id")}
    meta = info["metadata"]
    if "report_uri" not in meta:
        fail(f"job {source}: no report_uri in its metadata (not a tracebridge sweep)")
    if info["status"] not in TERMINAL:  # what lies at its URI now is an earlier attempt's report, if any
        fail(f"job {source} is {info['status']}: its report is not pushed yet; pull it once the job ended "
             f"(`tracebridge logs {source} --follow`), or pull {meta.get('sweep_id')} for the latest report of "
             "its sweep", 1)
    return meta["report_uri"], meta["sweep_id"], {k: meta.get(k, "") for k in ("sweep_id", "bundle_id")} | {
        "submission_id": source}


@app.command()
def pull(
    source: Annotated[str, typer.Argument(help="A submission id (that attempt's report), a sweep id (the latest "
                                          "report of its attempts), or a report URI / folder (s3://..., file://..., "
                                          "path).")],
    overrides: Annotated[list[str] | None, typer.Argument(
        help="key=value overrides of the storage config (request_timeout_s=10 retry.attempts=6 s3_endpoint_url=...).")] = None,
    out: Annotated[Path, typer.Option(help="Where the report goes (<out>/<sweep id>).")] = Path("reports"),
    config: StorageConfigOpt = None,
    old_config: Annotated[Path | None, typer.Option(
        "--storage-config", hidden=True, help="The old name of --config (kept so scripts using it still run).")] = None,
    cluster: ClusterOpt = "local",
    cluster_set: ClusterSetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Download a sweep's report from storage and verify its manifest hashes; exit 1 on any mismatch or
    when a submission id's report was written by another attempt, 2 when a URI or folder given holds no report
    or is mistyped, or the storage cannot be opened (unknown protocol, no credentials; as ``fetch``), 3 when the storage cannot be reached (each request bounded by
    request_timeout_s, retry.attempts tries) or the report changed on each of retry.attempts reads (a push over it)."""
    from tracebridge.cluster.submit import pull_report
    from tracebridge.config import load_config
    from tracebridge.export.config import StorageConfig

    if not source.strip():  # not a job id: asking a (possibly absent) head about '' would mislead
        fail(f"pull {source!r}: give a submission id (see `tracebridge list`) or a report URI / folder, "
             "e.g. tracebridge pull s3://bucket/prefix/reports/<sweep id>")
    if config is not None and old_config is not None:
        fail(f"--config {config} and --storage-config {old_config}: --storage-config is the old name of --config; "
             "give one of them")
    check_out_dir(out)
    with config_errors():
        storage_io = load_config(StorageConfig, config or old_config, overrides or [])
    uri, name, expect = _pull_source(source, cluster, cluster_set)
    _check_replaceable(out / name, uri)
    res = pull_report(uri, out / name, storage_io, expect)
    found = {"uri": uri, "problems": res["problems"], "path": None}  # every failure's JSON has them, as exit 1's
    if res.get("unreachable") or res.get("changing"):  # try again later, as fetch (changing: a push over it runs)
        fail(res["problems"][0], EXIT_UNREACHABLE, **found)
    if res.get("no_source") and not expect:  # a URI or folder given that holds nothing: called wrong, as fetch
        fail(res["problems"][0], EXIT_USAGE, **found)
    if res.get("refused"):  # a storage that cannot be opened (unknown protocol, bad bucket, no credentials): as fetch
        fail(res["problems"][0], EXIT_USAGE, **found)
    code = EXIT_FAILED if res["problems"] else 0
    if json_out:  # the shape of every command's JSON: ok and exit_code beside what it found (and error, as fail's)
        print_json({k: v for k, v in res.items() if k != "manifest"} | {"uri": uri, "ok": not code, "exit_code": code}
                   | ({"error": "; ".join(res["problems"])} if code else {}))
    else:
        for note in res["notes"]:
            typer.echo(f"note: {note}", err=True)
        for problem in res["problems"]:  # on stderr with the prefix every command's errors carry
            typer.echo(f"error: {problem}", err=True)
        if not code:
            typer.echo(f"report verified: {res['report_html']}"
                       + (f" (written by {res['written_by']})" if res["written_by"] else ""))
    raise typer.Exit(code)
