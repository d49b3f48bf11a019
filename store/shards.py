"""Shard files: written whole in staging, described by a manifest of checksums, then immutable.

A shard directory holds archs.parquet, layers.parquet, tensors.zarr and manifest.json.
The manifest is written last, so a staging directory without one is an interrupted write.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zarr

from zcpipe.errors import CorruptError, StoreError
from zcpipe.store.layout import StoreLayout
from zcpipe.store.remote import remove_prefix, upload_folder
from zcpipe.store.shard_schema import arch_schema, layer_schema

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
ARCH_CHUNK = 1024


class CorruptShardError(StoreError, CorruptError, RuntimeError):
    """A shard's files do not match its manifest."""


@dataclass(frozen=True)
class TensorBlock:
    """Dense node-wise statistics of one shard: values[a, p, s] (NaN where absent), mask[a, s]."""

    archs: list[str]
    proxies: list[str]
    slots: list[str]
    values: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class ShardManifest:
    """What a shard holds (space, run, configuration, archs) and the checksum of each of its files."""

    shard_id: str
    space: str
    run_id: str
    config_hash: str
    archs: list[str]
    files: dict[str, str]  # relative path -> sha256
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def read(cls, shard_dir: Path) -> ShardManifest:
        try:
            data = json.loads((shard_dir / MANIFEST).read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError) as e:
            raise CorruptShardError(f"shard {shard_dir} has no readable manifest ({e})") from None


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _checksums(shard_dir: Path) -> dict[str, str]:
    out = {}
    for p in sorted(shard_dir.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            out[p.relative_to(shard_dir).as_posix()] = file_sha256(p)
    return out


def verify_remote(layout: StoreLayout, rel: str) -> ShardManifest:
    """`verify` for a shard on object storage: every object read back and hashed."""
    prefix = layout.key(rel).rstrip("/") + "/"
    layout.fs.invalidate_cache()
    try:
        data = json.loads(layout.fs.cat_file(prefix + MANIFEST))
        manifest = ShardManifest(**data)
    except (OSError, ValueError, TypeError) as e:
        raise CorruptShardError(f"shard {layout.uri(rel)} has no readable manifest ({e})") from None
    actual = {}
    for key in layout.fs.find(prefix):
        name = key[len(prefix) :]
        if name != MANIFEST:
            actual[name] = hashlib.sha256(layout.fs.cat_file(key)).hexdigest()
    _compare(layout.uri(rel), manifest, actual)
    return manifest


def _compare(where: str | Path, manifest: ShardManifest, actual: dict[str, str]) -> None:
    for rel, digest in manifest.files.items():
        if rel not in actual:
            raise CorruptShardError(f"shard {where}: {rel} is missing")
        if actual[rel] != digest:
            raise CorruptShardError(f"shard {where}: {rel} does not match its checksum")
    extra = set(actual) - set(manifest.files)
    if extra:
        raise CorruptShardError(f"shard {where}: unexpected files {sorted(extra)[:3]}")


def verify(shard_dir: Path) -> ShardManifest:
    """The manifest, after checking every file against it; CorruptShardError says which file is wrong."""
    manifest = ShardManifest.read(shard_dir)
    _compare(shard_dir, manifest, _checksums(shard_dir))
    return manifest


def write_staged_shard(
    store_root: str | Path,
    *,
    shard_id: str,
    space: str,
    run_id: str,
    config_hash: str,
    arch_rows: list[dict] | pa.Table,
    layer_rows: list[dict] | pa.Table,
    proxy_names: list[str],
    tensors: TensorBlock,
) -> ShardManifest:
    """Write a complete shard under staging/ and return its manifest (the last file written). On a remote
    store the shard is written in a local temporary folder and uploaded to its final prefix, manifest
    last: there it stays invisible until the driver registers it (store/remote.py)."""
    layout = StoreLayout(store_root)
    if layout.remote:
        with tempfile.TemporaryDirectory(prefix="zcpipe-shard-") as tmp:
            manifest = _write_shard(Path(tmp) / shard_id, shard_id, space, run_id, config_hash,
                                    arch_rows, layer_rows, proxy_names, tensors)  # fmt: skip
            rel = layout.shard_rel(space, run_id, shard_id)
            remove_prefix(layout, rel)  # a retried task after a worker died mid-upload
            upload_folder(layout, Path(tmp) / shard_id, rel, last=MANIFEST)
        return manifest
    return _write_shard(layout.staged(shard_id), shard_id, space, run_id, config_hash,
                        arch_rows, layer_rows, proxy_names, tensors)  # fmt: skip


def _write_shard(
    target: Path, shard_id, space, run_id, config_hash, arch_rows, layer_rows, proxy_names, tensors
) -> ShardManifest:
    if target.exists():  # a retried task after a worker died mid-write
        shutil.rmtree(target)
    target.mkdir(parents=True)
    # Rows come as dicts from a worker, or as Arrow tables already in the shard schema (compaction, benchmarks).
    archs = (
        arch_rows
        if isinstance(arch_rows, pa.Table)
        else pa.Table.from_pylist(arch_rows, schema=arch_schema(proxy_names))
    )
    layers = (layer_rows if isinstance(layer_rows, pa.Table)
              else pa.Table.from_pylist(layer_rows, schema=layer_schema(list(tensors.proxies))))  # fmt: skip
    pq.write_table(archs, target / "archs.parquet")
    pq.write_table(layers, target / "layers.parquet")
    _write_zarr(target / "tensors.zarr", tensors, space, config_hash)
    manifest = ShardManifest(
        shard_id=shard_id,
        space=space,
        run_id=run_id,
        config_hash=config_hash,
        archs=archs.column("arch").to_pylist(),
        files=_checksums(target),
    )
    tmp = target / (MANIFEST + ".tmp")
    with tmp.open("w") as f:
        f.write(manifest.to_json())
        f.flush()
        os.fsync(f.fileno())
    tmp.rename(target / MANIFEST)
    return manifest


def _write_zarr(path: Path, t: TensorBlock, space: str, config_hash: str) -> None:
    g = zarr.open_group(str(path), mode="w")
    a, p, s = len(t.archs), len(t.proxies), len(t.slots)
    # Chunks of ARCH_CHUNK architectures: a large (compacted) shard then decodes on several threads.
    rows = min(max(a, 1), ARCH_CHUNK)
    # NaN, not 0.0, is what a chunk that is not there reads as: an absent value, never a plausible one.
    # (Readers refuse a shard with a missing chunk anyway: store/verified.py.)
    g.create_array("values", shape=(a, p, s), dtype="f8", chunks=(rows, max(p, 1), max(s, 1)), fill_value=np.nan)
    g.create_array("mask", shape=(a, s), dtype="bool", chunks=(rows, max(s, 1)), fill_value=False)
    if a:
        g["values"][:] = t.values
        g["mask"][:] = t.mask
    g.attrs.update(
        {"archs": t.archs, "proxies": t.proxies, "slots": t.slots, "space": space, "config_hash": config_hash}
    )


def read_tensors(shard_dir: str | Path) -> TensorBlock:
    """A shard's tensors, from a local folder or a URL (`s3://.../shards/<space>/<run>/<shard>`)."""
    g = zarr.open_group(f"{str(shard_dir).rstrip('/')}/tensors.zarr", mode="r")
    attrs = dict(g.attrs)
    return TensorBlock(
        archs=list(attrs["archs"]),
        proxies=list(attrs["proxies"]),
        slots=list(attrs["slots"]),
        values=np.asarray(g["values"][:]),
        mask=np.asarray(g["mask"][:]),
    )
