"""Where things live under a store root (DESIGN.md, "Store"), on local disk or on object storage.

A store is a folder or any fsspec URL (`s3://bucket/prefix`, `gs://...`, `memory://...`). The shards
and model artifacts live there. The DuckDB catalog needs a file it can write in place, which object
storage does not give, so a remote store's catalog is published there as one object and each process
works on a copy in its local cache (`$ZCPIPE_CACHE_DIR`, default `~/.cache/zcpipe`): see
`store/remote.py` for the commit protocol. S3 settings come from the standard AWS variables
(`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`).
"""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path

import fsspec

from zcpipe.errors import InputError, StoreError
from zcpipe.settings import cache_dir


class StoreLocationError(StoreError, InputError, ValueError):
    """The store path names something that cannot be a store (a file)."""


class StoreReadOnlyError(StoreError, InputError, PermissionError):
    """A change was asked of a store that cannot be written (a read-only mount, no write permission)."""


def read_only(where: object, e: BaseException) -> StoreReadOnlyError:
    reason = (str(e).splitlines() or [type(e).__name__])[0]
    return StoreReadOnlyError(
        f"store {where} cannot be written ({reason}); reading it works (sql, search, evaluate), but this command "
        "changes it: copy the store somewhere writable, or remount it read-write"
    )


def is_read_only_error(e: BaseException) -> bool:
    """Whether an OS or DuckDB error says the file system or the file refuses writes."""
    if isinstance(e, OSError) and e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return True
    text = str(e).lower()
    return "read-only file system" in text or "permission denied" in text


def is_remote(store: str | Path) -> bool:
    text = str(store)
    return "://" in text and not text.startswith("file://")


def normalize_store(store: str | Path) -> str:
    """The store as every stage passes it on: a URL unchanged (bar a trailing slash), a folder absolute."""
    text = str(store)
    if is_remote(text):
        return text.rstrip("/")
    return str(Path(text.removeprefix("file://")).expanduser().resolve())


class StoreLayout:
    """Where everything of one store lives: its URL, the local root (the store itself, or this node's
    working copy of a remote one), and the paths of the catalog, staging, shards and models."""

    def __init__(self, store: str | Path):
        self.url = normalize_store(store)
        self.remote = is_remote(self.url)
        if self.remote:
            self.fs, self.base = fsspec.core.url_to_fs(self.url)
            self.protocol = self.url.split("://", 1)[0]
            # The local side of a remote store: the catalog's working copy, snapshots, downloaded models.
            self.root = cache_dir() / "stores" / hashlib.sha256(self.url.encode()).hexdigest()[:16]
        else:
            self.fs = fsspec.filesystem("file")
            self.base = self.url
            self.root = Path(self.url)
            if self.root.exists() and not self.root.is_dir():
                raise StoreLocationError(
                    f"store {self.root} is a file, not a folder: pass a folder (created if missing) or an fsspec URL"
                )

    def __str__(self) -> str:
        return self.url

    # ------------------------------------------------------------------ where readers find a file

    def uri(self, rel: str) -> str:
        """What DuckDB, zarr and pyarrow open for a path relative to the store: a URL or a local path."""
        return f"{self.url}/{rel}" if self.remote else str(self.root / rel)

    def key(self, rel: str) -> str:
        """The fsspec path (no protocol) of a path relative to the store."""
        return f"{self.base}/{rel}"

    # ------------------------------------------------------------------ local paths

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.duckdb"

    @property
    def staging(self) -> Path:
        return self.root / "staging"

    @property
    def shards(self) -> Path:
        return self.root / "shards"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def models(self) -> Path:
        return self.root / "models"

    def model(self, name: str) -> Path:
        return self.models / name

    def staged(self, shard_id: str) -> Path:
        return self.staging / shard_id

    def committed(self, space: str, run_id: str, shard_id: str) -> Path:
        return self.shards / space / run_id / shard_id

    @staticmethod
    def shard_rel(space: str, run_id: str, shard_id: str) -> str:
        return f"shards/{space}/{run_id}/{shard_id}"
