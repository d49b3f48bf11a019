"""Local copies of a remote store's committed shards, fetched once and read from local disk after.

A query over object storage pays a round trip per file it opens, every time. Committed shards never
change (a shard id is written once; compaction writes new ids and retires old ones), so a copy on
local disk, keyed by the store and the shard's path, stays right for as long as the shard exists.

- Fetch: every missing file of every shard asked for, in one concurrent `fs.get`, into a temporary
  folder; each file is checked against the shard's manifest, then renamed into place. A part (one
  Parquet file, or the whole `tensors.zarr` folder) appears whole or not at all, so readers in other
  processes never see a half-written copy.
- Where: `<local side of the store>/shard-cache/<shard path>/` (see `StoreLayout.root`, under
  `$ZCPIPE_CACHE_DIR`). `ZCPIPE_SHARD_CACHE=0` turns it off: readers then go to the store each time.
- Clean-up: copies of shards the catalog no longer lists (retired by compaction) are removed once
  they have been unlisted for `PRUNE_AFTER_S`, so a reader still on an older catalog snapshot has
  that long to finish.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

from fsspec.callbacks import DEFAULT_CALLBACK, TqdmCallback

from zcpipe import settings
from zcpipe.errors import CorruptError, StoreError
from zcpipe.store.layout import StoreLayout
from zcpipe.store.shards import MANIFEST, file_sha256
from zcpipe.store.verified import verify_shards

PARTS = ("archs.parquet", "layers.parquet", "tensors.zarr")
PRUNE_AFTER_S = 600
PROGRESS_FROM = 200  # files in one fetch
PRUNED = ".pruned"  # touched by each pass of prune()
RETIRED = ".retired"  # in a cached shard the catalog no longer lists: when that was first seen


class ShardFetchError(StoreError, CorruptError, RuntimeError):
    """A shard could not be copied from the store, or its copy does not match its manifest."""


def enabled() -> bool:
    return settings.shard_cache_enabled()


def cache_root(layout: StoreLayout) -> Path:
    return layout.root / "shard-cache"


def shard_dirs(layout: StoreLayout, rels: list[str], parts: tuple[str, ...] = PARTS) -> list[str]:
    """Where readers open each shard of `rels` (paths relative to the store), with `parts` present there:
    the shard's folder for a local store; for a remote store the local copy, fetched if missing, or
    the URL when the cache is off."""
    if not layout.remote:
        where = [str(layout.root / r) for r in rels]
        # Nothing read back is trusted (store/verified.py): every file of the shard, so a damaged shard is
        # refused by every reader alike, not only by the one that opens the damaged part.
        verify_shards(layout.root, where)
        return where
    if not enabled():
        return [layout.uri(r) for r in rels]
    root = cache_root(layout)
    missing = [(r, p) for r in rels for p in parts if not (root / r / p).exists()]
    if missing:
        _fetch(layout, root, missing)
    where = [str(root / r) for r in rels]
    verify_shards(root, where, parts)  # fetched copies were checked; a copy damaged since is caught here
    return where


def _fetch(layout: StoreLayout, root: Path, missing: list[tuple[str, str]]) -> None:
    shards = sorted({r for r, _ in missing})
    manifests = _manifests(layout, root, shards)
    tmp = root / ".tmp" / uuid.uuid4().hex
    remote_keys, local_paths, placed = [], [], []
    try:
        for rel, part in missing:
            files = [f for f in manifests[rel]["files"] if f == part or f.startswith(part + "/")]
            if not files:
                raise ShardFetchError(f"shard {layout.uri(rel)} lists no {part} in its manifest")
            for f in files:
                remote_keys.append(layout.key(f"{rel}/{f}"))
                local_paths.append(str(tmp / rel / f))
            placed.append((rel, part))
        for p in local_paths:
            Path(p).parent.mkdir(parents=True, exist_ok=True)
        try:  # concurrent on async filesystems (s3fs)
            layout.fs.get(remote_keys, local_paths, callback=_progress(len(remote_keys), len(shards)))
        except (OSError, ValueError) as e:
            raise ShardFetchError(
                f"could not copy shards of {layout} to {root} ({e}); check the store's credentials and the disk "
                "space; if a shard's files are gone, reconciling the store drops it"
            ) from None
        for rel, part in placed:
            _check(layout, rel, tmp / rel, manifests[rel], part)
            dest = root / rel / part
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(tmp / rel / part, dest)
            except OSError:
                if not dest.exists():  # otherwise another process placed the same immutable files first
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (root / PRUNED).unlink(missing_ok=True)  # the catalog changed: the next prune looks at once


def _progress(files: int, shards: int):
    """A progress bar on a terminal when the fetch is long (a first read of an uncompacted store)."""
    if files < PROGRESS_FROM or not sys.stderr.isatty():
        return DEFAULT_CALLBACK
    return TqdmCallback(tqdm_kwargs={"desc": f"copying {shards} shards", "unit": "file", "leave": False})


def _manifests(layout: StoreLayout, root: Path, shards: list[str]) -> dict[str, dict]:
    """Each shard's manifest: the cached copy, or fetched (all missing ones in one concurrent call)."""
    out, fetch = {}, []
    for rel in shards:
        path = root / rel / MANIFEST
        if path.exists():
            out[rel] = json.loads(path.read_text())
        else:
            fetch.append(rel)
    if fetch:
        try:
            blobs = layout.fs.cat([layout.key(f"{r}/{MANIFEST}") for r in fetch], on_error="raise")
        except (OSError, ValueError) as e:
            raise ShardFetchError(
                f"could not read shard manifests of {layout} ({e}); if a shard's files are gone, "
                "reconciling the store drops it"
            ) from None
        for rel in fetch:
            data = blobs[layout.key(f"{rel}/{MANIFEST}")]
            out[rel] = json.loads(data)
            path = root / rel / MANIFEST
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{MANIFEST}.{uuid.uuid4().hex[:8]}")
            tmp.write_bytes(data)
            os.replace(tmp, path)
    return out


def _check(layout: StoreLayout, rel: str, local_shard: Path, manifest: dict, part: str) -> None:
    for name, digest in manifest["files"].items():
        if name != part and not name.startswith(part + "/"):
            continue
        if file_sha256(local_shard / name) != digest:
            raise ShardFetchError(
                f"shard {layout.uri(rel)}: {name} does not match its checksum; reconciling the store quarantines it"
            )


def prune(layout: StoreLayout, keep: list[str]) -> None:
    """Drop copies of shards the catalog no longer lists (`keep`: every committed shard's path), once
    they have been unlisted for PRUNE_AFTER_S: the first pass that finds one marks it, a later one removes it."""
    root = cache_root(layout)
    if not layout.remote or not root.is_dir():
        return
    listed, now, stamp = set(keep), time.time(), root / PRUNED
    # Every reader calls this; walk the cache only after a fetch (a new catalog) or now and then.
    if stamp.exists() and now - stamp.stat().st_mtime < PRUNE_AFTER_S / 10:
        return
    stamp.touch()
    for tmp in root.glob(".tmp/*"):  # left by a reader killed mid-fetch
        if now - tmp.stat().st_mtime > PRUNE_AFTER_S:
            shutil.rmtree(tmp, ignore_errors=True)
    for shard in root.glob("shards/*/*/*"):
        mark = shard / RETIRED
        if shard.as_posix()[len(root.as_posix()) + 1 :] in listed:
            mark.unlink(missing_ok=True)  # marked by a reader on an older catalog snapshot
            continue
        if not mark.exists():
            mark.write_text(str(now))
        elif now - mark.stat().st_mtime > PRUNE_AFTER_S:
            shutil.rmtree(shard, ignore_errors=True)
