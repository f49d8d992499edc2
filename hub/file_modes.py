"""Owner-only files for secrets, and a warning at start for those other users can read.

The registry database holds token hashes (and the backup a copy of them), the history
database a record of who is home when, ``configuration.yaml`` the MQTT password and the
paths of TLS keys. On a shared machine (or a Pi whose SD card is read elsewhere) other
users must not read them, so the hub creates them ``0600`` (its directory ``0700``)
whatever the umask. Files that already exist keep the mode their owner gave them; the hub
says at start which of them are readable by others, and how to fix it.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .const import CONFIG_FILE, HISTORY_DB, REGISTRY_DB

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "create_private", "exposed", "secret_files", "warn_exposed"]

_LOGGER = logging.getLogger(__name__)

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def create_private(path: Path) -> None:
    """Create ``path`` empty and owner-only unless it exists (SQLite gives its -wal/-shm files the same mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return
    os.close(fd)


def write_private(path: Path, text: str) -> None:
    """Write a new owner-only text file atomically (a temporary file, then a rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    tmp.replace(path)


def exposed(path: Path) -> int | None:
    """The file's permission bits when group or others have any access to it, else None (also when absent)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return mode if mode & 0o077 else None


def secret_files(config_dir: Path, config: Mapping[str, Any]) -> list[Path]:
    """Files the hub reads or writes that hold secrets or household records."""
    files = [config_dir / CONFIG_FILE, config_dir / REGISTRY_DB, config_dir / (REGISTRY_DB + ".bak"),
             config_dir / HISTORY_DB]
    for section, key in (("hub", "tls_key"), ("mqtt", "client_key")):
        value = (config.get(section) or {}).get(key)
        if isinstance(value, str) and value:
            files.append(Path(value))
    return files


def warn_exposed(paths: Iterable[Path]) -> list[Path]:
    """Log a warning for each file others may read; returns them."""
    if os.name != "posix":  # Windows ACLs do not map onto mode bits
        return []
    found = []
    for path in paths:
        mode = exposed(path)
        if mode is not None:
            found.append(path)
            _LOGGER.warning("%s holds secrets or household records, but other users may read it (mode %s); "
                            "run: chmod 600 %s", path, oct(mode), path)
    return found
