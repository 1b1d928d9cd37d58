"""Cloud credentials never ride in a trial's runtime_env (Ray logs runtime envs in plain text)."""

from __future__ import annotations

from tracebridge.sweep.tune_run import CREDENTIAL_VARS, keep_credentials_out_of_trial_runtime_env


class Trainable:
    pass


def _trial_env(monkeypatch) -> dict[str, str]:
    from ray.tune.execution.class_cache import _ActorClassCache

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAQZEXAMPLE0000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s" * 40)
    remote = _ActorClassCache().get(Trainable)
    return remote._default_options["runtime_env"]["env_vars"]


def test_tune_would_copy_aws_keys_into_trial_runtime_envs_and_the_sweep_stops_it(monkeypatch):
    from ray.tune.execution import class_cache

    monkeypatch.setattr(class_cache, "ENV_VARS_TO_PROPAGATE", set(class_cache.ENV_VARS_TO_PROPAGATE) | set(CREDENTIAL_VARS))
    assert "AWS_SECRET_ACCESS_KEY" in _trial_env(monkeypatch)  # Ray's own behaviour, which this guards against
    keep_credentials_out_of_trial_runtime_env()
    env = _trial_env(monkeypatch)
    assert not set(CREDENTIAL_VARS) & set(env) and env.get("PL_DISABLE_FORK") == "1"  # the rest still propagates
