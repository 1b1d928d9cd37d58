"""``gs://`` through gcsfs with its credentials found once per process: ``GCSFileSystem`` is gcsfs's core class
(not its 2026 default, ``tracebridge.export.storage._gcs_class`` says why) whose look-up of credentials is kept.

gcsfs looks for credentials each time a filesystem is made: Google's application default credentials, its
token cache, then the instance's metadata server, then anonymous. Off Google Cloud, where the metadata server's
address is dropped, google-auth waits for it with a timeout and retries: each ``open_fs`` of a ``gs://`` URI took
~12 s here before it went anonymous (a silent metadata server on 127.0.0.1; ~2 s on hosts that refuse the
address), and every storage call opens one. The outcome of the look-up (the credentials found, or none) is now
kept per process, keyed on the variables the look-up reads (``GOOGLE_*``, ``GCE_*``, ``CLOUDSDK_*``,
``NO_GCE_CHECK``, ``STORAGE_EMULATOR_HOST``, ``HOME``) and the project: a process that changes them (the ops
cycle, a test) looks again. A filesystem given ``token=`` uses it as gcsfs does. What the filesystem records
for pickling is the caller's arguments, so a Ray worker that unpickles it looks up its own credentials.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from gcsfs.core import DEFAULT_PROJECT
from gcsfs.core import GCSFileSystem as _CoreGCSFileSystem
from gcsfs.credentials import GoogleCredentials

_FOUND: dict[tuple[Any, ...], GoogleCredentials] = {}
_LOCK = threading.Lock()
_PREFIXES = ("GOOGLE_", "GCE_", "CLOUDSDK_", "GCSFS_")
_NAMES = ("NO_GCE_CHECK", "STORAGE_EMULATOR_HOST", "HOME")


def _env_key() -> tuple[tuple[str, str], ...]:
    """The environment variables the credentials look-up reads, with their values."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(_PREFIXES) or k in _NAMES))


def found_credentials(project: str, access: str, on_google: bool) -> GoogleCredentials:
    """gcsfs's credentials for ``project`` and ``access`` as its look-up (``token=None``) finds them, looked up once
    per process and environment (the look-up waits for a metadata server off Google Cloud)."""
    key = (project, access, on_google, os.getpid(), _env_key())
    with _LOCK:  # two threads opening gs:// at once look up once
        if key not in _FOUND:
            _FOUND[key] = GoogleCredentials(project, access, None, on_google=on_google)
        return _FOUND[key]


class GCSFileSystem(_CoreGCSFileSystem):
    """gcsfs's core ``GCSFileSystem`` whose ``token=None`` look-up of credentials is done once per process
    (``found_credentials``); any other ``token`` is gcsfs's."""

    def __init__(self, project: str = DEFAULT_PROJECT, access: str = "full_control", token: Any = None,
                 **kwargs: Any) -> None:
        # 'anon' makes gcsfs look nothing up; the credentials found (or none) are put in its place below
        super().__init__(project=project, access=access, token="anon" if token is None else token, **kwargs)
        if token is None:
            self.credentials = found_credentials(project, access, self.on_google)
