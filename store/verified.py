"""Readers check a shard's files against its manifest before first use, and remember what they checked.

A file in the store may be damaged (a lost Zarr chunk, a flipped byte, a truncated copy) or changed
behind zcpipe's back. Zarr reads a missing chunk as its fill value and Parquet decodes a changed byte as
another number, so without this check a damaged shard trains a model on zeros and nobody is told.

Hashing every file on every open would cost seconds on a large store, so a file whose hash matched is
remembered by (path, size, mtime, expected digest) in a small JSON memo under the local cache
(`$ZCPIPE_CACHE_DIR/verified/`); a warm open then stats each file and hashes only what changed. The
memo is a speed-up only: losing it (or being unable to write it) costs one re-hash, never a wrong read.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from zcpipe import settings
from zcpipe.store.shards import MANIFEST, CorruptShardError, ShardManifest, file_sha256

_lock = threading.Lock()
_memos: dict[str, dict[str, list]] = {}  # memo file -> {absolute path: [size, mtime_ns, sha256]}


def _memo_path(root: Path) -> Path:
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return settings.cache_dir() / "verified" / f"{key}.json"


def _load(path: Path) -> dict[str, list]:
    if str(path) not in _memos:
        try:
            data = json.loads(path.read_text())
            _memos[str(path)] = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            _memos[str(path)] = {}
    return _memos[str(path)]


def _save(path: Path, memo: dict[str, list]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo))
        tmp.replace(path)
    except OSError:  # a read-only cache: the memo lives in this process only
        pass


def _in_parts(rel: str, parts: tuple[str, ...] | None) -> bool:
    return parts is None or any(rel == p or rel.startswith(p + "/") for p in parts)


def verify_shards(root: Path, shard_dirs: list[str | Path], parts: tuple[str, ...] | None = None) -> None:
    """Check the files of each shard (those of `parts` only, where given) against its manifest; raise
    CorruptShardError naming the shard and the file at the first one missing or changed."""
    memo_file = _memo_path(root)
    with _lock:
        memo = _load(memo_file)
        changed = False
        for d in map(Path, shard_dirs):
            if not (d / MANIFEST).exists():
                raise CorruptShardError(
                    f"shard {d} has lost its {MANIFEST}, so its files cannot be verified; reconciling the store "
                    "quarantines it"
                )
            manifest = ShardManifest.read(d)
            for rel, digest in manifest.files.items():
                if _in_parts(rel, parts):
                    changed |= _check_file(d, rel, digest, memo)
        if changed:
            _save(memo_file, memo)


def _check_file(shard: Path, rel: str, digest: str, memo: dict[str, list]) -> bool:
    """True when the memo gained an entry."""
    path = shard / rel
    try:
        st = path.stat()
    except FileNotFoundError:
        raise CorruptShardError(
            f"shard {shard}: {rel} is missing (its manifest lists it); reconciling the store quarantines the shard"
        ) from None
    key = str(path)
    if memo.get(key) == [st.st_size, st.st_mtime_ns, digest]:
        return False
    if file_sha256(path) != digest:
        memo.pop(key, None)
        raise CorruptShardError(
            f"shard {shard}: {rel} does not match its checksum (damaged or changed since it was committed); "
            "reconciling the store quarantines the shard"
        )
    memo[key] = [st.st_size, st.st_mtime_ns, digest]
    return True
