"""NAS-Bench-201's own files: the v1_0 / v1_1 `.pth` and NATS-Bench's topology folder (both pickles)."""

from __future__ import annotations

import bz2
import pickle
from collections import defaultdict
from pathlib import Path

from zcpipe.pipeline.errors import LabelFormatError
from zcpipe.pipeline.labels.formats import LABEL_FORMATS
from zcpipe.pipeline.labels.rows import label_row, need_trust, source_of
from zcpipe.workers.spaces import SearchSpace

# NB201/NATS dataset names -> (dataset, {eval name: split}); the benchmark's own pairing.
_NB201_EVALS = {
    "cifar10-valid": ("cifar10", {"x-valid": "valid"}),
    "cifar10": ("cifar10", {"ori-test": "test"}),
    "cifar100": ("cifar100", {"x-valid": "valid", "x-test": "test"}),
    "ImageNet16-120": ("imagenet16-120", {"x-valid": "valid", "x-test": "test"}),
}


def arch_results(space: str, key: str, state: dict, source: str) -> list[dict]:
    """Rows from one ArchResults state dict: final-epoch accuracy per dataset/split, mean over seeds."""
    acc: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for (dataset_name, _seed), result in state["all_results"].items():
        if dataset_name not in _NB201_EVALS:
            continue
        dataset, evals = _NB201_EVALS[dataset_name]
        epochs = int(result["epochs"])
        for eval_key, value in result["eval_acc1es"].items():
            name, _, epoch = eval_key.partition("@")
            if name in evals and int(epoch) == epochs - 1:
                acc[(dataset, evals[name], epochs)].append(float(value))
    return [
        label_row(space, key, d, s, sum(v) / len(v), source, epochs=e, seed_agg=f"mean of {len(v)} seeds")
        for (d, s, e), v in acc.items()
    ]


@LABEL_FORMATS.register("nb201-pth", pattern="*.pth")
def read_nb201_pth(space: SearchSpace, path: Path, trust_pickle: bool = False, **_) -> list[dict]:
    """NAS-Bench-201 v1_0 / v1_1 `.pth`: {'meta_archs', 'arch2infos': {i: {'less', 'full'}}, ...}."""
    need_trust(path, trust_pickle)
    import torch

    data = torch.load(path, map_location="cpu", weights_only=False)
    source = source_of(path)
    try:
        archs, infos = data["meta_archs"], data["arch2infos"]
    except (KeyError, TypeError):
        raise LabelFormatError(f"{path} is not a NAS-Bench-201 file (no meta_archs / arch2infos)") from None
    rows = []
    for index, info in infos.items():
        key = space.parse(archs[index])
        for hp in ("less", "full"):
            if hp in info:
                rows += arch_results(space.name, key, info[hp], source)
    return rows


@LABEL_FORMATS.register("nats-tss", folder=True)
def read_nats_tss(space: SearchSpace, path: Path, trust_pickle: bool = False, **_) -> list[dict]:
    """NATS-Bench topology folder: meta.pickle.pbz2 ({"meta_archs", ...}) and {index:06d}.pickle.pbz2
    per architecture ({'12': ArchResults state, '200': ...})."""
    need_trust(path, trust_pickle)
    if not (path / "meta.pickle.pbz2").is_file():
        raise LabelFormatError(f"{path} is not a NATS-Bench topology folder (no meta.pickle.pbz2)")

    def load(p: Path):
        with bz2.open(p, "rb") as f:
            return pickle.load(f)

    archs = load(path / "meta.pickle.pbz2")["meta_archs"]
    source = source_of(path)
    rows = []
    for f in sorted(path.glob("*.pickle.pbz2")):
        stem = f.name.split(".")[0]
        if not stem.isdigit():
            continue
        key = space.parse(archs[int(stem)])
        for state in load(f).values():
            rows += arch_results(space.name, key, state, source)
    return rows
