"""The salt of the users' pseudonyms: a harvest with the salt's variable unset is refused (the built-in
salt is public: anyone could reverse the pseudonyms by hashing Telegram user ids), unless the config opts in
with ``allow_default_salt=true`` (tests, demos); a later harvest with the variable unset names it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest

from tests.feedback.conftest import feedback_cli, reaction
from tracebridge.feedback.chunks import read_registry, record_batch
from tracebridge.feedback.harvest import harvest_updates
from tracebridge.feedback.join import labels_report
from tracebridge.feedback.ledger import DEFAULT_SALT, hash_user, read_ledger, salt_id

ENV = "TRACEBRIDGE_FEEDBACK_SALT"


def _dump(tmp_path: Path, *updates: dict) -> str:
    dump = tmp_path / "u.json"
    dump.write_bytes(orjson.dumps(list(updates)))
    return str(dump)


def test_no_salt_is_refused_before_anything_is_written(cfg, tmp_path, monkeypatch):
    """It exited 0 with no word and hashed the users under the public built-in salt."""
    from tracebridge.feedback.webhook import WebhookServer

    monkeypatch.delenv(ENV, raising=False)
    code, out = feedback_cli(cfg, "harvest", "--updates", _dump(tmp_path, reaction(1, 10, [], ["👍"])))
    assert code == 2 and f"{ENV} is not set" in out and "allow_default_salt=true" in out, out
    assert not Path(cfg.ledger).parent.exists()  # no ledger, lock, harvest log or quarantine
    with pytest.raises(ValueError, match=f"{ENV} is not set"):  # `feedback serve` refuses when it starts
        WebhookServer(dataclasses.replace(cfg, webhook_port=0), "a-long-secret")
    monkeypatch.setenv(ENV, "")  # empty is unset
    with pytest.raises(ValueError, match=f"{ENV} is not set"):
        harvest_updates(cfg, [("t:1", reaction(1, 10, [], ["👍"]))], "getUpdates", ["t"])


def test_the_salt_variable_of_the_config_is_the_one_read(cfg, monkeypatch):
    """``user_salt_env`` names another variable: with it unset, the default variable's salt was used."""
    monkeypatch.setenv(ENV, "not-this-one")
    monkeypatch.delenv("HOST_SALT", raising=False)
    with pytest.raises(ValueError, match="HOST_SALT is not set"):
        harvest_updates(dataclasses.replace(cfg, user_salt_env="HOST_SALT"), [("t:1", reaction(1, 10, [], ["👍"]))],
                        "getUpdates", ["t"])


def test_the_built_in_salt_is_taken_only_when_opted_in(cfg, tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    code, doc = feedback_cli(cfg, "harvest", "--updates", _dump(tmp_path, reaction(1, 10, [], ["👍"])),
                             "allow_default_salt=true")
    assert code == 0 and doc["added"] == 1
    assert [r.raw["salt_id"] for r in read_ledger(cfg.ledger).rows] == [salt_id(DEFAULT_SALT)]


def test_a_later_harvest_without_the_salt_names_the_variable(cfg, tmp_path, monkeypatch):
    """It said only "pseudonymised under another salt", not that the variable was unset."""
    monkeypatch.setenv(ENV, "the-host-salt")
    harvest_updates(cfg, [("t:1", reaction(1, 10, [], ["❤"]))], "getUpdates", ["t"])
    before = Path(cfg.ledger).read_bytes()
    monkeypatch.delenv(ENV)
    dump = _dump(tmp_path, reaction(2, 10, ["❤"], ["👎"]))
    code, out = feedback_cli(cfg, "harvest", "--updates", dump)
    assert code == 2 and f"{ENV} is not set" in out and "holds rows already" in out, out
    code, out = feedback_cli(cfg, "harvest", "--updates", dump, "allow_default_salt=true")
    assert code == 2 and "pseudonymised under another salt" in out and f"{ENV} is not set" in out, out
    assert Path(cfg.ledger).read_bytes() == before


ANN = 5550001  # a user, and the id of her private chat with the bot


def test_the_library_never_pseudonymises_under_the_built_in_salt(cfg, salt_file, monkeypatch):
    """``record_batch`` called by the bot's runtime without a salt, with the variable unset there, kept the private
    chat as ``hash_user(id, "tracebridge-feedback")``: anyone with a list of Telegram ids reversed it. Now the host's
    salt file is made once (a random secret, mode 600) and read by every later call and by the harvest."""
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(ValueError, match="no salt for the feedback pseudonyms"):
        hash_user(ANN)  # nothing configured: an error, never a constant
    record_batch(cfg.registry, ANN, [11], "runA", "runA:e")
    assert salt_file.stat().st_mode & 0o777 == 0o600 and salt_file.parent.stat().st_mode & 0o777 == 0o700
    secret = salt_file.read_text().strip()
    assert len(secret) == 32 and secret != DEFAULT_SALT
    [row] = read_registry(cfg.registry).raws
    assert row["chat"] == hash_user(ANN, secret) != hash_user(ANN, DEFAULT_SALT)
    assert row["salt_id"] == salt_id(secret)
    record_batch(cfg.registry, ANN, [12], "runB", "runB:e")  # made once: the next call reads it
    assert salt_file.read_text().strip() == secret
    # the harvest reads the same file: the reaction joins the batch the runtime recorded
    harvest_updates(cfg, [("t:1", reaction(1, 11, [], ["👍"], chat=ANN, user=ANN))], "getUpdates", ["t"])
    assert labels_report(cfg.ledger, cfg.mapping, cfg.registry)["runs"]["runA"]["run"]["feedback_score"] == 1.0
    assert {r.raw["salt_id"] for r in read_ledger(cfg.ledger).rows} == {salt_id(secret)}


def test_a_configured_salt_keeps_its_pseudonyms_and_makes_no_file(cfg, salt_file, monkeypatch):
    monkeypatch.setenv(ENV, "the-host-salt")
    record_batch(cfg.registry, ANN, [11], "runA", "runA:e")
    assert read_registry(cfg.registry).raws[0]["chat"] == hash_user(ANN, "the-host-salt")
    assert not salt_file.exists()
    monkeypatch.delenv(ENV)  # the same salt kept in the file instead (a trailing newline is no part of it)
    salt_file.parent.mkdir(parents=True)
    salt_file.write_text("the-host-salt\n")
    salt_file.chmod(0o600)
    assert hash_user(ANN) == hash_user(ANN, "the-host-salt")


@pytest.mark.parametrize("bad", ["open", "folder", "empty"])
def test_a_salt_file_that_cannot_be_used_is_an_error_naming_it(cfg, salt_file, monkeypatch, bad):
    monkeypatch.delenv(ENV, raising=False)
    salt_file.parent.mkdir(parents=True)
    if bad == "folder":
        salt_file.mkdir()
    else:
        salt_file.write_text("" if bad == "empty" else "s3cret\n")
        salt_file.chmod(0o644 if bad == "open" else 0o600)
    why = {"open": "mode 644, open to other users", "folder": "a folder", "empty": "empty"}[bad]
    with pytest.raises(ValueError, match=f"{salt_file}: {why}"):
        record_batch(cfg.registry, ANN, [11], "runA", "runA:e")
    assert not Path(cfg.registry).exists()
    code, out = feedback_cli(cfg, "harvest", "--updates", _dump(Path(cfg.ledger).parents[2], reaction(1, 10, [], ["👍"])))
    assert code == 2 and f"{salt_file}: {why}" in out, out
    code, out = feedback_cli(cfg, "chunks", "record", "--chat", str(ANN), "--message-ids", "11", "--run-id", "runA",
                             "--event-id", "runA:e")
    assert code == 2 and f"{salt_file}: {why}" in out and "is not set" not in out, out  # it said "is not set"
    assert record_batch(cfg.registry, -1001234567890, [5], "runG", "runG:e")  # a group's id needs no salt


def test_a_registry_the_library_wrote_under_the_built_in_salt_is_named_as_such(cfg, salt_file, monkeypatch):
    """Rows an older version's record_batch wrote under the public salt: the next call (now under the host's salt
    file) is refused, and the message says that salt is the public one and what to do."""
    monkeypatch.delenv(ENV, raising=False)
    record_batch(cfg.registry, ANN, [11], "runA", "runA:e", salt=DEFAULT_SALT)  # as record_batch wrote it before
    with pytest.raises(ValueError, match=f"{salt_id(DEFAULT_SALT)} is the public built-in salt.*start a new registry"):
        record_batch(cfg.registry, ANN, [12], "runB", "runB:e")


def test_a_read_looks_up_the_host_salt_once_not_once_a_row(cfg, salt_file, monkeypatch, tmp_path):
    """Read without a salt given, each row holding a private chat id in the clear read the salt file again: a
    ledger of 50,000 such rows took 4.2 s against 1.2 s with the salt given."""
    import time

    monkeypatch.delenv(ENV, raising=False)
    salt_file.parent.mkdir(parents=True)
    salt_file.write_text("s3cret\n")
    salt_file.chmod(0o600)
    rows = [{"time": "2026-02-25T06:00:00.000Z", "chat": 1000 + i % 500, "message_id": i, "user": "u:abc", "emoji": "👍",
             "change": "added", "key": f"tg:{i}:added:👍"} for i in range(20000)]
    ledger = tmp_path / "old.jsonl"
    ledger.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))

    def took(salt: str | None) -> float:
        best = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            scan = read_ledger(ledger, salt)
            best = min(best, time.perf_counter() - t)
        assert scan.rows[0].chat == hash_user(1000, "s3cret")
        return best

    assert took(None) < 2 * took("s3cret")


def test_no_home_directory_names_the_variables_that_fix_it(cfg, tmp_path, monkeypatch):
    """A container under an arbitrary uid has no HOME and no passwd entry: the salt file's place was a bare
    ``RuntimeError: Could not determine home directory.`` (a traceback out of `feedback harvest`)."""
    import pwd

    from tracebridge.feedback.salt import SALT_FILE_ENV, configured_salt, salt_file

    def no_entry(uid: int):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    for var in (ENV, SALT_FILE_ENV, "HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(pwd, "getpwuid", no_entry)  # what the passwd database answers for an unknown uid
    for call in (salt_file, configured_salt):
        with pytest.raises(ValueError, match=f"no home directory.*set {ENV} .* or {SALT_FILE_ENV} to a file"):
            call()
    code, out = feedback_cli(cfg, "harvest", "--updates", _dump(tmp_path, reaction(1, 10, [], ["👍"])))
    assert code == 2 and "no home directory" in out and SALT_FILE_ENV in out, out
    assert not Path(cfg.ledger).exists()
    monkeypatch.setenv(SALT_FILE_ENV, str(tmp_path / "salt"))  # either variable is the fix
    assert salt_file() == tmp_path / "salt" and configured_salt() is None
    monkeypatch.setenv(ENV, "host-secret")
    assert harvest_updates(cfg, [("t:1", reaction(1, 10, [], ["👍"]))], "getUpdates", ["t"]).added == 1
