"""Do the proxies of 2023-24 help a trained predictor? GBDT (the `gbdt` predictor, whole-network values) on
the same cells, labels and splits, with and without MeCo, SWAP and ZiCo.

    python bench/new_proxies_gbdt.py --store STORE [--sizes 78,156] [--seeds 0,1,2,3,4]

STORE holds the new proxies beside older ones for a seeded NB201 sample (`python bench/literature.py --cells 500
--proxies meco,swap,zico,nwot,synflow --store STORE` makes it; its labels are imported here if missing).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import NB201_LABELS, machine, require

from zcpipe.pipeline import import_labels
from zcpipe.predictors import get_predictor, rank_metrics
from zcpipe.predictors.protocol import split
from zcpipe.store import Catalog
from zcpipe.store.tensor_reader import load_training_set

TARGET = "cifar10_valid"


def _columns(data, names):
    idx = [data.scalar_names.index(n) for n in names]
    return data.scalars[:, idx]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True)
    ap.add_argument("--sizes", default="78,156")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    args = ap.parse_args()
    if not Catalog(args.store).query("SELECT count(*) AS n FROM labels").to_pylist()[0]["n"]:
        import_labels(args.store, "nb201", str(require(NB201_LABELS)))
    data = load_training_set(args.store, "nb201", target=TARGET)
    fresh = [n for n in ("meco", "swap", "zico") if n in data.scalar_names]
    older = [n for n in data.scalar_names if n not in fresh]
    columns = {
        f"{', '.join(older)}": older,
        f"{', '.join(older)} + {', '.join(fresh)}": older + fresh,
        f"{', '.join(fresh)} alone": fresh,
    }
    n = len(data)
    print(f"# GBDT on {n} NB201 cells, {TARGET}; Kendall τ on the cells not trained on; {machine()}")
    for size in (int(s) for s in args.sizes.split(",")):
        for label, names in columns.items():
            taus = []
            these = replace(data, scalar_names=names, scalars=_columns(data, names))
            for seed in (int(s) for s in args.seeds.split(",")):
                train, test = split(n, size, seed)
                model = get_predictor("gbdt")
                model.fit(these.subset(train), seed=seed)
                taus.append(rank_metrics(model.predict(these.subset(test)).score, these.labels[test])["kendall"])
            print(f"n={size:4d}  {label:45s} τ {statistics.mean(taus):.3f} ± {statistics.stdev(taus):.3f}")


if __name__ == "__main__":
    main()
