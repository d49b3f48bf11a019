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


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}"


def require(path: Path) -> Path:
    if not path.exists():
        raise SystemExit(f"error: {path} not found; set ZCPIPE_SHARED_DATA to the shared/data folder")
    return path
