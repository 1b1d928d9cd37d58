"""``credential_source``: which credentials a request to an object store went with, in words, for the message
of a refusal (a 403): the provider that found them (the environment, a shared credentials file and its profile,
an instance role, ...) and the last four characters of the access key id. Nothing secret is named. And
``forbidden_raised``: gcsfs's 403 raised as s3fs raises it."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

# botocore's names of its credential providers (``Credentials.method``), in words
_AWS = {
    "env": "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)",
    "shared-credentials-file": "the shared credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials)",
    "config-file": "the AWS config file (AWS_CONFIG_FILE or ~/.aws/config)",
    "assume-role": "a role assumed through the AWS config file",
    "assume-role-with-web-identity": "a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)",
    "sso": "AWS SSO (the AWS config file)",
    "container-role": "the container's role (ECS/EKS credentials endpoint)",
    "iam-role": "the instance's IAM role (instance metadata)",
}
# gcsfs's names of its ways to find credentials (``GoogleCredentials.method``), in words
_GCS = {
    "anon": "none (anonymous: no Google credentials were found)",
    "google_default": "Google application default credentials (GOOGLE_APPLICATION_CREDENTIALS or gcloud's login)",
    "cache": "gcsfs's token cache (~/.gcs_tokens)",
    "cloud": "the instance's service account (metadata server)",
    "browser": "a browser login",
}


def _aws_credentials(fs: Any) -> Any:
    """The credentials the S3 client of ``fs`` signs with, or those botocore finds in this environment."""
    try:
        return fs.s3._request_signer._credentials  # s3fs's aiobotocore client: what the request was signed with
    except AttributeError:
        import botocore.session

        return botocore.session.Session().get_credentials()


def credential_source(uri: str, fs: Any = None) -> str:
    """Where the credentials of a request to ``uri`` came from, in words ("" for a storage that takes none):
    the provider, the profile (``AWS_PROFILE``) and the access key id's last four characters on ``s3://``; gcsfs's
    method and ``GOOGLE_APPLICATION_CREDENTIALS`` on ``gs://``. ``fs``: the filesystem that sent the request
    (a fresh look-up in this environment without it)."""
    scheme = urlsplit(uri).scheme
    try:
        if scheme in ("s3", "s3a"):
            if fs is not None and getattr(fs, "anon", False):
                return "none (anonymous: options.anon)"
            creds = _aws_credentials(fs)
            if creds is None:
                return "none found"
            where = _AWS.get(creds.method, f"botocore's {creds.method!r} provider")
            profile = f", profile {os.environ['AWS_PROFILE']!r}" if os.environ.get("AWS_PROFILE") else ""
            key = creds.access_key or ""
            return f"{where}{profile}, access key id ending {key[-4:]!r}" if key else f"{where}{profile}"
        if scheme in ("gs", "gcs"):
            method = getattr(getattr(fs, "credentials", None), "method", None)
            where = _GCS.get(method, f"gcsfs's {method!r} method") if method else "Google application default credentials"
            path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
            return where + (f", GOOGLE_APPLICATION_CREDENTIALS={path}" if path and method != "anon" else "")
    except Exception as exc:  # noqa: BLE001 - a message's detail: never the reason a refusal goes unreported
        return f"unknown ({type(exc).__name__}: {exc})"
    return ""


def forbidden_raised(op: Callable[[], T]) -> T:
    """``op()``, with gcsfs's 403 (a plain ``OSError("Forbidden: <path>...")``, which ``retry_io`` retried as a
    storage that cannot be reached: exit 3 after the tries) raised as the PermissionError s3fs raises for one."""
    try:
        return op()
    except OSError as exc:
        if type(exc) is OSError and str(exc).startswith("Forbidden: "):
            raise PermissionError(str(exc)) from exc
        raise
