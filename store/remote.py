"""A store on object storage: the commit protocol without rename, the published catalog, leases.

Object storage has atomic whole-object writes and (S3) conditional writes, but no rename and no
file that two processes can update in place. So:

- A worker uploads a shard's files straight to their final prefix `shards/<space>/<run>/<shard>/`,
  `manifest.json` last. Shard ids are unique per run, so no two writers share a prefix.
- The catalog is the commit point. Readers list shards from the catalog only, so an uploaded shard
  is invisible until the driver has verified its files against the manifest, registered it, and
  published the catalog. A driver killed in between leaves an unregistered prefix: the next
  ingest's reconcile registers it if its manifest verifies, and deletes it if it has none.
- The catalog lives in the bucket as one object, `catalog.duckdb`, replaced whole (S3 PUT is
  atomic: readers get the old or the new file). The one writer works on a local copy and holds
  the lease `catalog.lock` while it syncs down, writes and publishes. Readers download the
  published version once per ETag into the local cache and open it read-only, so any number of
  readers on any number of nodes see a consistent committed state.
- Leases are objects created with S3's conditional PUT (If-None-Match: *), carrying an expiry that
  a background thread renews; a lease whose holder died expires and is taken over. Takeover, renewal,
  release and the catalog's publish are compare-and-swaps on the ETag last seen (If-Match,
  store/conditional.py), so a holder that stalled past its expiry cannot undo its successor's work.
- Compaction's replaced shards stay for settings.SNAPSHOT_GRACE_S after the swap, for readers still on an
  older catalog snapshot.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from pathlib import Path

from zcpipe import settings
from zcpipe.errors import BusyError, StoreError
from zcpipe.store.conditional import ConditionFailed, delete_if, etag_of, put_if
from zcpipe.store.layout import StoreLayout

log = logging.getLogger(__name__)

CATALOG_KEY = "catalog.duckdb"


class LeaseHeldError(StoreError, BusyError, RuntimeError):
    """Another process holds a store lease (a running ingest, or a catalog commit)."""


class PublishConflictError(StoreError, BusyError, RuntimeError):
    """The published catalog changed between this writer's sync and its publish."""


class LeaseLostError(StoreError, BusyError, RuntimeError):
    """This process's lease lapsed (renewals failed past its expiry) or another process took it over."""


class Lease:
    """An exclusive lease on `<store>/<name>` for the `with` block, renewed while held.

    Every change to the lease object is conditional on the version last seen (store/conditional.py):
    of several processes taking over an expired lease exactly one wins, and a holder that stalled past
    its expiry and was taken over can neither renew nor delete its successor's lease; `ensure_held()`
    tells it so before it acts on the lease's protection."""

    def __init__(self, layout: StoreLayout, name: str, *, ttl: float, wait: float, what: str):
        self.fs, self.key, self.ttl, self.wait, self.what = layout.fs, layout.key(name), ttl, wait, what
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._etag: str | None = None
        self._valid_until = 0.0  # our expiry as last written
        self.lost = False

    def _body(self) -> tuple[bytes, float]:
        expires = time.time() + self.ttl
        return json.dumps({"owner": self.owner, "expires": expires}).encode(), expires

    def __enter__(self) -> Lease:
        deadline, pause = time.monotonic() + self.wait, 0.05
        while True:
            body, expires = self._body()
            try:
                self._etag = put_if(self.fs, self.key, body, None)
                break
            except ConditionFailed:
                pass
            seen = etag_of(self.fs, self.key)  # read before the body: the body is at least this new
            if seen is None:  # released since our attempt: try again at once
                continue
            held = self._holder()
            if held is not None and held.get("expires", 0) < time.time():
                try:
                    self._etag = put_if(self.fs, self.key, body, seen)
                    log.warning("took over %s: its holder %s let it expire", self.key, held.get("owner"))
                    break
                except ConditionFailed:  # another process took it first, or the holder renewed
                    continue
            if time.monotonic() > deadline:
                who = held.get("owner", "another process") if held else "another process"
                raise LeaseHeldError(
                    f"{self.what} is held by {who} (lease {self.key}); wait for it to finish, or, if that "
                    f"process is dead, for the lease to expire (at most {self.ttl:.0f}s)"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
        self._valid_until = expires
        self._thread = threading.Thread(target=self._renew, daemon=True, name=f"lease {self.key}")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self.lost and self._etag is not None:
            delete_if(self.fs, self.key, self._etag)

    def ensure_held(self) -> None:
        """Raise LeaseLostError unless this process still holds the lease, with some time left on it."""
        if self.lost or time.time() > self._valid_until - self.ttl / 10:
            raise LeaseLostError(
                f"this process lost {self.what} (lease {self.key}): it stalled or could not renew it for "
                f"{self.ttl:.0f}s, and another process may hold it now; nothing was published, run it again"
            )

    def _holder(self) -> dict | None:
        try:
            return json.loads(self.fs.cat_file(self.key))
        except (FileNotFoundError, ValueError):
            return None

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            body, expires = self._body()
            try:
                self._etag = put_if(self.fs, self.key, body, self._etag)
                self._valid_until = expires
            except ConditionFailed:
                self.lost = True
                log.error("lost %s: another process took it over", self.key)
                return
            except OSError as e:  # a missed renewal is retried; the lease only lapses after ttl
                log.warning("could not renew %s: %s", self.key, e)


# ---------------------------------------------------------------------- the published catalog


def _etag(layout: StoreLayout) -> str | None:
    return etag_of(layout.fs, layout.key(CATALOG_KEY))


def _download(layout: StoreLayout, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
    layout.fs.get_file(layout.key(CATALOG_KEY), str(tmp))
    tmp.replace(target)


def published_snapshot(layout: StoreLayout) -> Path | None:
    """A local read-only copy of the catalog as last published (downloaded once per version)."""
    etag = _etag(layout)
    if etag is None:
        return None
    snap = layout.root / "snapshots" / f"{etag}.duckdb"
    if not snap.exists():
        _download(layout, snap)
        # Earlier versions: an open reader keeps its inode, and one about to open gets a grace period.
        for old in snap.parent.glob("*.duckdb"):
            if old != snap and time.time() - old.stat().st_mtime > settings.SNAPSHOT_GRACE_S:
                old.unlink(missing_ok=True)
    return snap


def sync_working_copy(layout: StoreLayout) -> None:
    """Make the writer's local catalog the published one (call under the catalog lease)."""
    etag = _etag(layout)
    mark = layout.root / "catalog.etag"
    if etag is None:  # a new store, or one whose catalog was removed: start from nothing
        layout.catalog.unlink(missing_ok=True)
        mark.unlink(missing_ok=True)
        return
    if not layout.catalog.exists() or not mark.exists() or mark.read_text() != etag:
        _download(layout, layout.catalog)
        mark.write_text(etag)


def publish(layout: StoreLayout) -> None:
    """Upload the writer's closed catalog file as the store's catalog: one atomic PUT, made only if the
    published catalog is still the version this writer synced from (PublishConflictError if not)."""
    mark = layout.root / "catalog.etag"
    expected = (mark.read_text() if mark.exists() else "") or None  # None: the store has no catalog yet
    try:
        etag = put_if(layout.fs, layout.key(CATALOG_KEY), layout.catalog.read_bytes(), expected)
    except ConditionFailed:
        mark.unlink(missing_ok=True)  # the next writer starts again from the published catalog
        raise PublishConflictError(
            f"the catalog of {layout} was published by another process while this one held its lease "
            "(it had stalled past the lease's expiry); nothing of this commit was published: run it again "
            "(shards already uploaded are registered by the next reconcile)"
        ) from None
    mark.write_text(etag)


# ---------------------------------------------------------------------- folders


def upload_folder(layout: StoreLayout, local: Path, rel: str, last: str | None = None) -> None:
    """Copy a local folder to `<store>/<rel>/`, the file named `last` after all the others."""
    files = sorted(p for p in local.rglob("*") if p.is_file())
    for batch in ([p for p in files if p.name != last], [p for p in files if p.name == last]):
        if batch:  # one call per batch: an async filesystem (s3fs) uploads its files concurrently
            keys = [layout.key(f"{rel}/{p.relative_to(local).as_posix()}") for p in batch]
            layout.fs.put([str(p) for p in batch], keys)


def download_folder(layout: StoreLayout, rel: str, local: Path) -> None:
    prefix = layout.key(rel).rstrip("/") + "/"
    tmp = local.with_name(f".{local.name}.{uuid.uuid4().hex[:8]}")
    keys = layout.fs.find(prefix)
    targets = [tmp / key[len(prefix) :] for key in keys]
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
    if keys:  # one call: an async filesystem (s3fs) downloads them concurrently
        layout.fs.get(keys, [str(t) for t in targets])
    if not tmp.exists():
        raise FileNotFoundError(f"{layout.uri(rel)} is empty or missing")
    if local.exists():  # another process fetched it meanwhile: the same immutable files
        shutil.rmtree(tmp)
        return
    tmp.rename(local)


def remove_prefix(layout: StoreLayout, rel: str) -> None:
    try:
        layout.fs.rm(layout.key(rel), recursive=True)
    except FileNotFoundError:
        pass


def shard_prefixes(layout: StoreLayout) -> dict[str, bool]:
    """Every `shards/<space>/<run>/<shard>` prefix in the store, mapped to whether it has a manifest."""
    layout.fs.invalidate_cache()
    root = layout.key("shards") + "/"
    out: dict[str, bool] = {}
    try:
        keys = layout.fs.find(root)
    except FileNotFoundError:
        return out
    for key in keys:
        parts = key[len(root) :].split("/")
        if len(parts) < 4:
            continue
        rel = "shards/" + "/".join(parts[:3])
        out[rel] = out.get(rel, False) or (len(parts) == 4 and parts[3] == "manifest.json")
    return out
