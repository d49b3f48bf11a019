"""Shared set-up of the benchmark scripts: real data location, seeded cells, one-line environment."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ZCPIPE_SHARED_DATA", ROOT.parent / "shared" / "data"))
CIFAR_NPZ = SHARED / "cifar10" / "train_sample.npz"
CIFAR100_NPZ = SHARED / "cifar100" / "train_sample.npz"
NB201_LABELS = SHARED / "nb201" / "labels.csv"
DARTS_LABELS = SHARED / "darts" / "labels.jsonl"
# The proxies of the shared stores (NB201 CIFAR-10 3,000 cells, NB301): the 2021 set (NAS-Bench-Suite-Zero's
# 13), the same on every task so that tables compare.
STORE_PROXIES = ("params", "flops", "synflow", "snip", "grad_norm", "fisher", "grasp", "plain", "l2_norm", "jacov",
                 "nwot", "zen", "epe_nas")  # fmt: skip


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}"


def require(path: Path) -> Path:
    if not path.exists():
        raise SystemExit(f"error: {path} not found; set ZCPIPE_SHARED_DATA to the shared/data folder")
    return path


def shared_store(name: str, dest: Path, space: str, labels: Path) -> Path:
    """A writable copy of the shared store `name` (../shared/data/stores/NAME) at `dest`, reconciled and with
    `labels` imported for `space`; an existing copy is reused."""
    return shared_stores([name], dest, {space: labels})


def shared_stores(names: list[str], dest: Path, labels: dict[str, Path]) -> Path:
    """One writable store at `dest` holding the shards of every shared store in `names`, reconciled, with each
    space's label file of `labels` imported; an existing copy is reused."""
    import shutil

    from zcpipe.pipeline import import_labels
    from zcpipe.store import Catalog

    if not (dest / "catalog.duckdb").exists():
        for name in names:
            shutil.copytree(require(SHARED / "stores" / name), dest, dirs_exist_ok=True, copy_function=shutil.copy)
        for p in [dest, *dest.rglob("*")]:  # the shared copy is read-only
            p.chmod(0o755 if p.is_dir() else 0o644)
        with Catalog(dest).writer() as w:
            w.reconcile(verify_all=True)
        for space, path in labels.items():
            import_labels(str(dest), space, str(require(path)), "auto", False)
    return dest
