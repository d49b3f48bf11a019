"""Hyper-parameter selection on validation cells only: for each candidate, fit on the training cells
minus a carved-out validation part and report Kendall τ on that part (never on a test cell).

    python bench/select_hparams.py --store bench-store [--train-size 156] [--seeds 5] [--fraction 0.3] \\
        "parzc" "parzc labels=zscore" "parzc batch_size=64" ...

Each candidate is a predictor name followed by key=value options. Prints mean ± std over seeds and
the training-set τ beside it (the gap shows over-fitting). `bench/predictors.py` prepares bench-store.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT

from zcpipe.pipeline import parse_hparams
from zcpipe.pipeline.training.fit import load_data
from zcpipe.predictors import get_predictor, rank_metrics
from zcpipe.predictors.protocol import carve_validation, split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("candidates", nargs="+")
    ap.add_argument("--store", type=Path, default=ROOT / "bench-store")
    ap.add_argument("--space", default="nb201")
    ap.add_argument("--target", default="cifar10_valid")
    ap.add_argument("--train-size", type=int, default=156)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--fraction", type=float, default=0.3)
    args = ap.parse_args()
    loaded: dict[str, object] = {}
    for candidate in args.candidates:
        name, *pairs = candidate.split()
        hp = parse_hparams(pairs)
        kind = get_predictor(name, **hp).input_kind  # statistics, or graphs with them (graf, zc-gcn)
        if kind not in loaded:
            loaded[kind] = load_data(kind, str(args.store), [args.space], args.target, None)
        data = loaded[kind]
        fit_tau, val_tau, t = [], [], time.perf_counter()
        for seed in range(args.seeds):
            train, _ = split(len(data), args.train_size, seed)
            fit, val = carve_validation(train, args.fraction, seed)
            model = get_predictor(name, **hp)
            model.fit(data.subset(fit), seed=seed)
            fit_tau.append(rank_metrics(model.predict(data.subset(fit)).score, data.labels[fit])["kendall"])
            val_tau.append(rank_metrics(model.predict(data.subset(val)).score, data.labels[val])["kendall"])
        print(f"{candidate:60s} val {np.mean(val_tau):.3f} ± {np.std(val_tau):.3f}  train {np.mean(fit_tau):.3f}  "
              f"({time.perf_counter() - t:.0f}s)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
