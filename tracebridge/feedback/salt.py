"""Where the salt of the feedback pseudonyms comes from (a Telegram user's id, and a private chat's, kept as
``hash_user(id, salt)``).

In order: the salt a caller passes; the environment variable (``TRACEBRIDGE_FEEDBACK_SALT``, or the config's
``user_salt_env``); the host's salt file (``TRACEBRIDGE_FEEDBACK_SALT_FILE``, default
``~/.config/tracebridge/feedback-salt``: the salt alone, blanks around it ignored, mode 600). Never a constant:
the built-in salt is public, so its pseudonyms are reversed by hashing a list of Telegram user ids; only a
harvest with ``allow_default_salt=true`` (tests, demos) takes it. ``host_salt`` creates the file, once, with a
random secret where neither is set (the library's ``record_batch`` of a private chat), so every later process
of the host reads the same salt. A salt file that cannot be read (a folder, no permission, empty, readable by
others) is an error naming it and the fix, never a fallback.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

SALT_ENV = "TRACEBRIDGE_FEEDBACK_SALT"
SALT_FILE_ENV = "TRACEBRIDGE_FEEDBACK_SALT_FILE"


def salt_file() -> Path:
    """The host's salt file: ``$TRACEBRIDGE_FEEDBACK_SALT_FILE``, else ``$XDG_CONFIG_HOME`` (or ``~/.config``)
    ``/tracebridge/feedback-salt``.

    Raises:
        ValueError: neither variable is set and there is no home directory (``HOME`` unset and the user not in the
            passwd database: a container run under an arbitrary uid), naming the variables that fix it. It was a bare
            ``RuntimeError: Could not determine home directory.`` out of every command that looked for the salt.
    """
    if named := os.environ.get(SALT_FILE_ENV):
        return Path(named).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME")
    if not base:
        try:
            base = str(Path.home() / ".config")
        except RuntimeError:  # Path.home(): HOME unset and no passwd entry for this uid
            raise ValueError(
                f"no home directory to look for the salt file ~/.config/tracebridge/feedback-salt in (HOME is not set "
                f"and uid {os.getuid()} has no passwd entry, as in a container run under an arbitrary uid): set "
                f"{SALT_ENV} to the secret salt of this host, or {SALT_FILE_ENV} to a file that holds it (mode 600)"
            ) from None
    return Path(base) / "tracebridge" / "feedback-salt"


def read_salt_file(path: Path | None = None) -> str | None:
    """The salt kept in ``path`` (default ``salt_file()``), or None when there is no such file.

    Raises:
        ValueError: the file cannot be used: a folder, unreadable, empty, or readable or writable by others
            than its owner (a secret: ``chmod 600``); the message names the file and the fix.
    """
    p = path or salt_file()
    how = (f"the salt of the feedback pseudonyms ({SALT_FILE_ENV} names another file; {SALT_ENV} set takes "
           "precedence)")
    try:
        st = p.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"{p}: cannot be read ({exc.strerror or exc}); it holds {how}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{p}: a folder; the salt file is a file holding {how}")
    if st.st_mode & 0o077:
        raise ValueError(f"{p}: mode {stat.S_IMODE(st.st_mode):o}, open to other users; it holds {how}, a secret: "
                         f"`chmod 600 {p}`")
    try:
        text = p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"{p}: cannot be read ({why}); it holds {how}") from exc
    if not text:
        raise ValueError(f"{p}: empty; it holds {how}: write the salt into it (e.g. `openssl rand -hex 16 > {p}`), "
                         "or remove it to have one made")
    return text


def configured_salt(env: str = SALT_ENV) -> str | None:
    """The host's salt: the variable ``env`` when set and not empty, else the salt file's; None when neither.

    Raises:
        ValueError: a salt file that cannot be used (``read_salt_file``).
    """
    return os.environ.get(env) or read_salt_file()


def host_salt(env: str = SALT_ENV) -> str:
    """``configured_salt``, or a new random secret written to the salt file (mode 600, its folder 700), once:
    a process that finds the file made meanwhile by another takes that one's salt.

    Raises:
        ValueError: a salt file that cannot be used or made (its folder not writable), naming it.
    """
    if salt := configured_salt(env):
        return salt
    p = salt_file()
    salt = secrets.token_hex(16)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(salt + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, p)  # whole or not at all, and never over a salt another process made meanwhile
    except FileExistsError:  # made meanwhile by another process
        if (made := read_salt_file(p)) is None:
            raise ValueError(f"{p}: the salt file vanished as it was made; run again") from None
        return made
    except OSError as exc:
        raise ValueError(f"{p}: cannot make the salt file ({exc.strerror or exc}); set {SALT_ENV} to a secret salt "
                         f"of this host, or {SALT_FILE_ENV} to a file path that can be written") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return salt


def no_salt(env: str = SALT_ENV) -> str:
    """Why no salt could be found, and how to give one (the message of the errors that need one)."""
    return (f"{env} is not set and there is no salt file {salt_file()}: set {env} to the secret salt of this host "
            f"(e.g. `export {env}=$(openssl rand -hex 16)`), or keep it in that file (mode 600)")
