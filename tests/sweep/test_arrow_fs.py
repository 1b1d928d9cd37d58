"""Ray Tune's and Train's own storage I/O (checkpoints, experiment state, ``Tuner.can_restore``) goes
through ``tune_storage``'s pyarrow filesystem, bounded by the sweep's ``storage_io`` as our own copies
are. Given a bare ``s3://`` URI Ray used pyarrow's S3 defaults: about 100 s per request on a storage
that accepts connections and never answers, and an error that named no storage. Against a real S3 API
(moto on 127.0.0.1) the bounded filesystem writes and reads, also in the pickled copy each trial gets;
against a silent socket it fails after ``retry.attempts`` tries of at most ``request_timeout_s``."""

from __future__ import annotations

import os
import pickle
import time

import pytest
from pyarrow import fs as pafs

from tests.export.test_storage_timeouts import aws_env, silent_endpoint, silent_server  # noqa: F401  (fixtures)
from tests.sweep.test_storage import s3  # noqa: F401  (the moto fixture)
from tracebridge.export.config import RetryConfig, StorageConfig
from tracebridge.export.storage import StorageError, StorageUnreachable
from tracebridge.sweep.arrow_fs import BoundedS3FileSystem
from tracebridge.sweep.storage import join, read_text, tune_storage
from tracebridge.sweep.tune_run import run_exists

pytestmark = pytest.mark.timeout(180)  # a call that stalls fails the test instead of hanging the suite
PYARROW_DEFAULT_S = 90  # a silent endpoint held each request of Ray's default S3 filesystem ~100 s


def options(fs: pafs.S3FileSystem) -> dict:
    """The options an S3FileSystem is rebuilt from in another process (what pyarrow pickles)."""
    return pafs.S3FileSystem.__reduce__(fs)[1][0]


def test_local_storage_is_an_absolute_path_without_filesystem(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert tune_storage("runs") == (str(tmp_path / "runs"), None)
    assert tune_storage("file:///tmp/x") == ("/tmp/x", None)


def test_s3_settings_come_from_storage_io() -> None:
    cfg = StorageConfig(s3_endpoint_url="http://127.0.0.1:9", s3_region="eu-west-1", request_timeout_s=7,
                        retry=RetryConfig(attempts=5))
    path, fs = tune_storage("s3://tb-runs/sweeps/", cfg)
    assert path == "tb-runs/sweeps" and isinstance(fs, BoundedS3FileSystem) and fs.attempts == 5
    opts = options(fs)
    assert (opts["connect_timeout"], opts["request_timeout"]) == (7.0, 7.0)
    assert (opts["endpoint_override"], opts["region"]) == ("http://127.0.0.1:9", "eu-west-1")
    assert opts["access_key"] is None and opts["secret_key"] is None  # each process finds its own credentials
    copy = pickle.loads(pickle.dumps(fs))  # what each trial gets: pyarrow's own pickling drops the retries
    assert isinstance(copy, BoundedS3FileSystem) and copy.attempts == 5 and options(copy) == opts
    with pytest.raises(StorageError, match="credentials in URIs are refused"):
        tune_storage("s3://key:secret@tb-runs/x", cfg)


def test_bounded_s3_filesystem_writes_and_reads_on_a_real_s3_api(s3, tmp_path) -> None:  # noqa: F811
    cfg = StorageConfig(request_timeout_s=5, retry=RetryConfig(attempts=2))
    path, fs = tune_storage(join(s3, "tune"), cfg)
    assert path == f"{s3.removeprefix('s3://')}/tune"
    assert options(fs)["endpoint_override"] == os.environ["AWS_ENDPOINT_URL"]  # as botocore finds it
    assert not run_exists(join(s3, "tune", "sw1"), join(path, "sw1"), fs)
    with fs.open_output_stream(f"{path}/sw1/tuner.pkl") as f:
        f.write(b"state")
    copy = pickle.loads(pickle.dumps(fs))
    with copy.open_input_stream(f"{path}/sw1/tuner.pkl") as f:
        assert f.read() == b"state"
    assert read_text(join(s3, "tune", "sw1", "tuner.pkl"), cfg) == "state"  # the same storage as our copies
    assert run_exists(join(s3, "tune", "sw1"), join(path, "sw1"), copy)


def test_a_silent_s3_endpoint_fails_each_operation_after_its_tries(aws_env) -> None:  # noqa: F811
    with silent_server() as (url, conns):
        cfg = StorageConfig(s3_endpoint_url=url, request_timeout_s=1, retry=RetryConfig(attempts=2))
        path, fs = tune_storage("s3://tb/sweeps", cfg)
        for label, f in (("driver", fs), ("trial copy", pickle.loads(pickle.dumps(fs)))):
            for op, arg in ((f.get_file_info, f"{path}/sw1/tuner.pkl"),
                            (f.open_output_stream, f"{path}/sw1/checkpoint/x.json")):
                before, t0 = len(conns), time.monotonic()
                with pytest.raises(OSError, match="NETWORK_CONNECTION"):
                    op(arg)
                assert time.monotonic() - t0 < 20 < PYARROW_DEFAULT_S, label  # 2 tries of ~1 s, SDK backoff
                assert len(conns) - before == 2, label  # one connection per try: retry.attempts, also in the copy


def test_tunes_look_up_on_a_silent_endpoint_names_the_storage(silent_endpoint, aws_env) -> None:  # noqa: F811
    cfg = StorageConfig(s3_endpoint_url=silent_endpoint, request_timeout_s=1, retry=RetryConfig(attempts=1))
    path, fs = tune_storage("s3://tb/sweeps", cfg)
    t0 = time.monotonic()
    with pytest.raises(StorageUnreachable, match=r"^look-up of the Tune run at s3://tb/sweeps/sw1 failed: OSError"):
        run_exists("s3://tb/sweeps/sw1", join(path, "sw1"), fs)
    assert time.monotonic() - t0 < 20


def test_other_schemes_go_through_the_bounded_fsspec_filesystem() -> None:
    path, fs = tune_storage("memory://tb/sweeps", StorageConfig())
    assert isinstance(fs, pafs.PyFileSystem) and path == "/tb/sweeps"
    with fs.open_output_stream(f"{path}/sw1/x.json") as f:
        f.write(b"{}")
    assert fs.get_file_info(f"{path}/sw1/x.json").size == 2


@pytest.mark.slow
def test_gs_requests_are_bounded_by_request_timeout_s(silent_endpoint, monkeypatch) -> None:  # noqa: F811
    pytest.importorskip("gcsfs")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", silent_endpoint)  # gcsfs's endpoint
    cfg = StorageConfig(request_timeout_s=0.3, options={"token": "anon"})
    path, fs = tune_storage("gs://tb/sweeps", cfg)
    copy = pickle.loads(pickle.dumps(fs))
    assert copy.handler.fs.requests_timeout.sock_read == 0.3  # kept in each trial's copy
    t0 = time.monotonic()
    with pytest.raises(OSError):  # fsspec's FSTimeoutError
        copy.get_file_info(f"{path}/sw1/tuner.pkl")
    # gcsfs tries each request 6 times, sleeping ~1+2+4+8+16 s between (fixed in its code); its default
    # timeout is aiohttp's 5 min per try
    assert time.monotonic() - t0 < 6 * 0.3 + 45


def test_an_endpoint_set_in_options_reaches_tunes_s3_too(s3, monkeypatch) -> None:  # noqa: F811
    """``storage_io.options.endpoint_url`` took our copies (s3fs) to the S3 API while Tune's checkpoints
    (pyarrow) went to AWS: the sweep pushed and fetched, and Tune failed or wrote elsewhere."""
    url = os.environ["AWS_ENDPOINT_URL"]
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # only the config names the endpoint
    cfg = StorageConfig(options={"endpoint_url": url}, request_timeout_s=3, retry=RetryConfig(attempts=1))
    path, fs = tune_storage(join(s3, "opts"), cfg)
    copy = pickle.loads(pickle.dumps(fs))  # what each trial writes through
    with copy.open_output_stream(f"{path}/sw1/tuner.pkl") as f:
        f.write(b"state")
    assert read_text(join(s3, "opts", "sw1", "tuner.pkl"), cfg) == "state"  # the same storage as our copies


def test_options_tunes_s3_cannot_take_are_refused_not_ignored() -> None:
    from tracebridge.config import ConfigError
    from tracebridge.sweep.config import load_sweep_config

    cfg = StorageConfig(options={"use_ssl": "false", "anon": "true"})
    opts = options(tune_storage("s3://tb/sweeps", cfg)[1])
    assert (opts["scheme"], opts["anonymous"]) == ("http", True)
    assert cfg.fs_options("s3")["use_ssl"] is False  # a 'false' string was truthy to botocore
    bad = StorageConfig(options={"requester_pays": "true"})
    with pytest.raises(StorageError, match=r"^s3://tb/sweeps: storage_io.options.requester_pays=true: an s3fs "
                                           r"option pyarrow's S3 .* has no equivalent"):
        tune_storage("s3://tb/sweeps", bad)
    assert tune_storage("memory://tb/sweeps", bad)[1] is not None  # fsspec's own filesystem takes it
    with pytest.raises(ConfigError, match=r"storage_io.options.requester_pays=True: an s3fs option"):  # str(True)
        load_sweep_config("configs/sweep/smoke.yaml", ["bundle=x", "storage=s3://tb/sweeps",
                                                       "storage_io.options.requester_pays=true"])
    with pytest.raises(ConfigError, match=r"storage_io.options.endpoint_url=http://a:1: differs from "
                                          r"s3_endpoint_url=http://b:2; set one"):
        load_sweep_config("configs/sweep/smoke.yaml", ["bundle=x", "storage=s3://tb/sweeps",
                                                       "storage_io.options.endpoint_url=http://a:1",
                                                       "storage_io.s3_endpoint_url=http://b:2"])
