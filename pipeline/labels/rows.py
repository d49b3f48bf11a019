"""What every label reader shares: the row every label becomes, where it came from, and the checks
before reading a file.

Every row says what it is: space, arch key, `label` (dataset_split), dataset, split, metric, epochs,
how seeds were aggregated, a free `detail` (e.g. NDS width/depth) and the source file.
"""

from __future__ import annotations

import json
from pathlib import Path

from zcpipe.pipeline.errors import LabelFormatError

# What the plain files in shared/data hold (shared/data/README.md): dataset, split, epochs, seed aggregation
# and, where the label keeps the column's name, that name. Datasets are named as `zcpipe datasets` names
# them, so that statistics pair with the labels of their own task.
PLAIN_COLUMNS = {
    "nb201": {
        "cifar10_test": ("cifar10", "test", 200, "mean over seeds"),
        "cifar10_valid": ("cifar10", "valid", 200, "mean over seeds"),
        "cifar100_valid": ("cifar100", "valid", 200, "mean over seeds"),
        "imagenet16_valid": ("imagenet16-120", "valid", 200, "mean over seeds"),
        # nb201/other_tasks.csv: the Few-Cost-Proxy study's runs (final validation accuracy, one run)
        "synthetic_cifar10_valid": ("synthetic-cifar10", "valid", None, "final, one run", "synthetic_cifar10_valid"),
        "spherical_cifar100_valid": (
            "spherical-cifar100",
            "valid",
            None,
            "final, one run",
            "spherical_cifar100_valid",
        ),
    },
    "nb101": {"cifar10_valid": ("cifar10", "valid", 108, "mean over seeds")},
    "nds-darts": {"cifar10_valid": ("cifar10", "valid", 100, "NAS-Bench-301")},
}
STRUCTURE_KEYS = {
    "arch",
    "index",
    "matrix",
    "ops",
    "normal",
    "reduce",
    "normal_concat",
    "reduce_concat",
    "params_m",
    "genotype",
}


def source_of(path: Path) -> str:
    """Labels are identified by the file they came from: re-importing it replaces them."""
    return str(path.resolve())


def label_row(
    space,
    arch,
    dataset,
    split,
    value,
    source,
    *,
    epochs=None,
    seed_agg=None,
    metric="accuracy",
    detail="",
    row=0,
    label=None,
):
    """One label row; `label` defaults to dataset_split. `row` (line or entry of the source) keeps repeated
    measurements of one architecture apart."""
    return {
        "space": space,
        "arch": arch,
        "label": label or f"{dataset}_{split}",
        "dataset": dataset,
        "split": split,
        "metric": metric,
        "epochs": epochs,
        "seed_agg": seed_agg,
        "detail": detail,
        "value": float(value),
        "source": source,
        "source_row": row,
    }


def need_trust(path: Path, trust: bool) -> None:
    if not trust:
        raise LabelFormatError(
            f"{path} is a pickle, which can run code when loaded; allow it (`trust_pickle`) if you trust its source",
            options=["trust_pickle"],
        )


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise LabelFormatError(f"{path} is not JSON") from None
