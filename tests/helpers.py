"""Small builders shared by tests that need a committed shard without running the engine."""

import sys

import numpy as np

from tests.conftest import CIFAR_NPZ
from zcpipe.store import Catalog, TensorBlock, write_staged_shard

ZCPIPE = [sys.executable, "-m", "zcpipe.cli"]


def ingest_args(store, n: int, *extra: str) -> list[str]:
    """`zcpipe ingest` of n seeded NB201 cells on the real CIFAR-10 sample at batch 16, no progress bar."""
    return [
        *ZCPIPE,
        "ingest",
        "--space",
        "nb201",
        "--store",
        str(store),
        "--limit",
        str(n),
        "--data",
        "cifar10",
        "--data-root",
        str(CIFAR_NPZ),
        "--batch-size",
        "16",
        "--no-progress",
        *extra,
    ]


def commit_arch_rows(
    store, space: str, rows: list[dict], proxy_names: list[str], config_hash: str = "c", shard_id: str = "s"
) -> Catalog:
    """Commit `rows` (archs.parquet rows) as one shard with an empty tensor block; returns the catalog."""
    n = len(rows)
    block = TensorBlock([r["arch"] for r in rows], [], ["x"], np.zeros((n, 0, 1)), np.zeros((n, 1), bool))
    cat = Catalog(store)
    with cat.writer() as w:
        w.reconcile()
        manifest = write_staged_shard(
            store,
            shard_id=shard_id,
            space=space,
            run_id="r",
            config_hash=config_hash,
            arch_rows=rows,
            layer_rows=[],
            proxy_names=proxy_names,
            tensors=block,
        )
        w.commit(manifest)
    return cat


def nb201_labels_for(archs, folder) -> str:
    """The real NB201 label rows of `archs` only, as a CSV in `folder` (an import of all 15,625 takes seconds)."""
    import csv

    from tests.conftest import NB201_LABELS

    wanted = set(archs)
    path = folder / "nb201-labels-subset.csv"
    with open(NB201_LABELS) as src, open(path, "w", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerows(r for r in reader if r["arch"] in wanted)
    return str(path)


class CliResult:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def cli(*args) -> CliResult:
    """Run a `zcpipe` command in this process (click's runner: same parsing, exit codes and streams, without
    an interpreter start and imports per call). Tests of the process contract itself use subprocesses."""
    from typer.testing import CliRunner

    from zcpipe.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)
