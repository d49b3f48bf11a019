"""Ground-truth readers: benchmark files in, self-describing label rows out, keyed by arch key.

Every row says what it is: space, arch key, `label` (dataset_split), dataset, split, metric, epochs,
how seeds were aggregated, a free `detail` (e.g. NDS width/depth) and the source file.
"""

from __future__ import annotations

import bz2
import csv
import json
import pickle
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

from zcpipe.pipeline.graphs import graph_rows
from zcpipe.store import Catalog
from zcpipe.workers.spaces import ArchError, SearchSpace, get_space

FORMATS = ("auto", "csv", "jsonl", "nb201-pth", "nats-tss", "nds-json", "zc-json", "nb101-tfrecord")
# What the plain files in shared/data hold (shared/data/README.md): dataset, split, epochs, seed aggregation.
PLAIN_COLUMNS = {
    "nb201": {
        "cifar10_test": ("cifar10", "test", 200, "mean over seeds"),
        "cifar10_valid": ("cifar10", "valid", 200, "mean over seeds"),
        "cifar100_valid": ("cifar100", "valid", 200, "mean over seeds"),
        "imagenet16_valid": ("imagenet16-120", "valid", 200, "mean over seeds"),
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


class LabelFormatError(ValueError):
    pass


def _source(path: Path) -> str:
    """Labels are identified by the file they came from: re-importing it replaces them."""
    return str(path.resolve())


def _row(
    space, arch, dataset, split, value, source, *, epochs=None, seed_agg=None, metric="accuracy", detail="", row=0
):
    # `row` (line or entry of the source) keeps repeated measurements of one architecture apart.
    return {
        "space": space,
        "arch": arch,
        "label": f"{dataset}_{split}",
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


def _plain(space: SearchSpace, records: Iterator[tuple[int, dict]], path: Path) -> list[dict]:
    source = _source(path)
    known = PLAIN_COLUMNS.get(space.name, {})
    rows, errors = [], []
    for n, rec in records:
        arch_text = rec["arch"] if "arch" in rec else json.dumps({k: rec[k] for k in rec if k in STRUCTURE_KEYS})
        try:
            key = space.parse(arch_text)
        except ArchError as e:
            errors.append(f"{path.resolve()!s}:{n}: {e}")
            continue
        for col, v in rec.items():
            if col in STRUCTURE_KEYS or v in (None, ""):
                continue
            dataset, split, epochs, agg = (
                known.get(col, (*col.rsplit("_", 1), None, None)) if "_" in col else (col, "value", None, None)
            )
            rows.append(_row(space.name, key, dataset, split, float(v), source, epochs=epochs, seed_agg=agg, row=n))
    if errors:
        raise LabelFormatError(f"{len(errors)} rows of {path} do not parse as {space.name}: " + "; ".join(errors[:3]))
    return rows


def read_csv(space: SearchSpace, path: Path, **_) -> list[dict]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if "arch" not in (reader.fieldnames or []):
            raise LabelFormatError(f"{path} has no `arch` column (columns: {reader.fieldnames})")
        return _plain(space, enumerate(reader, start=2), path)


def read_jsonl(space: SearchSpace, path: Path, **_) -> list[dict]:
    def records():
        with path.open() as f:
            for n, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        yield n, json.loads(line)
                    except ValueError:
                        raise LabelFormatError(f"{path}:{n} is not JSON") from None

    return _plain(space, records(), path)


def _need_trust(path: Path, trust: bool) -> None:
    if not trust:
        raise LabelFormatError(
            f"{path} is a pickle, which can run code when loaded; pass --trust-pickle if you trust its source"
        )


# NB201/NATS dataset names -> (dataset, {eval name: split}); the benchmark's own pairing.
_NB201_EVALS = {
    "cifar10-valid": ("cifar10", {"x-valid": "valid"}),
    "cifar10": ("cifar10", {"ori-test": "test"}),
    "cifar100": ("cifar100", {"x-valid": "valid", "x-test": "test"}),
    "ImageNet16-120": ("imagenet16-120", {"x-valid": "valid", "x-test": "test"}),
}


def _arch_results(space: str, key: str, state: dict, source: str) -> list[dict]:
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
        _row(space, key, d, s, sum(v) / len(v), source, epochs=e, seed_agg=f"mean of {len(v)} seeds")
        for (d, s, e), v in acc.items()
    ]


def read_nb201_pth(space: SearchSpace, path: Path, trust_pickle: bool = False, **_) -> list[dict]:
    """NAS-Bench-201 v1_0 / v1_1 `.pth`: {'meta_archs', 'arch2infos': {i: {'less', 'full'}}, ...}."""
    _need_trust(path, trust_pickle)
    import torch

    data = torch.load(path, map_location="cpu", weights_only=False)
    source = _source(path)
    try:
        archs, infos = data["meta_archs"], data["arch2infos"]
    except (KeyError, TypeError):
        raise LabelFormatError(f"{path} is not a NAS-Bench-201 file (no meta_archs / arch2infos)") from None
    rows = []
    for index, info in infos.items():
        key = space.parse(archs[index])
        for hp in ("less", "full"):
            if hp in info:
                rows += _arch_results(space.name, key, info[hp], source)
    return rows


def read_nats_tss(space: SearchSpace, path: Path, trust_pickle: bool = False, **_) -> list[dict]:
    """NATS-Bench topology folder: meta.pickle.pbz2 ({"meta_archs", ...}) and {index:06d}.pickle.pbz2
    per architecture ({'12': ArchResults state, '200': ...})."""
    _need_trust(path, trust_pickle)
    if not (path / "meta.pickle.pbz2").is_file():
        raise LabelFormatError(f"{path} is not a NATS-Bench topology folder (no meta.pickle.pbz2)")

    def load(p: Path):
        with bz2.open(p, "rb") as f:
            return pickle.load(f)

    archs = load(path / "meta.pickle.pbz2")["meta_archs"]
    source = _source(path)
    rows = []
    for f in sorted(path.glob("*.pickle.pbz2")):
        stem = f.name.split(".")[0]
        if not stem.isdigit():
            continue
        key = space.parse(archs[int(stem)])
        for state in load(f).values():
            rows += _arch_results(space.name, key, state, source)
    return rows


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise LabelFormatError(f"{path} is not JSON") from None


def read_nds_json(space: SearchSpace, path: Path, **_) -> list[dict]:
    """An NDS per-space file: a JSON list of models, each with net.genotype, width/depth and per-epoch
    top-1 *error* curves; stored as accuracy = 100 − error at the last epoch."""
    models = _read_json(path)
    source = _source(path)
    rows = []
    for n, m in enumerate(models):
        try:
            net = m["net"]
            key = space.parse(json.dumps(net["genotype"]))
            curve = m["test_ep_top1"]
        except (KeyError, TypeError) as e:
            raise LabelFormatError(f"{path} model {n} lacks {e} (expected net.genotype and test_ep_top1)") from None
        detail = f"width={net.get('width')},depth={net.get('depth')}"
        rows.append(
            _row(
                space.name,
                key,
                "cifar10",
                "test",
                100.0 - float(curve[-1]),
                source,
                epochs=len(curve),
                seed_agg="single run",
                detail=detail,
                row=n,
            )
        )
    return rows


def read_nb101_tfrecord(space: SearchSpace, path: Path, **_) -> list[dict]:
    """The official NAS-Bench-101 tfrecord: per cell, the mean over its repeats of the final validation
    and test accuracy (in percent, as the other label files) at the file's largest epoch budget."""
    from zcpipe.pipeline.nb101_tfrecord import decode_record, read_records

    if space.name != "nb101":
        raise LabelFormatError(f"{path} is a NAS-Bench-101 tfrecord; import it with --space nb101")
    source = _source(path)
    acc: dict[tuple[str, int], tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for body in read_records(path):
        _hash, epochs, matrix, ops, metrics = decode_record(body)
        if not metrics.evaluation_data:
            continue
        final = metrics.evaluation_data[-1]  # the end of training (the official API's evaluation_data[2])
        spec = json.dumps({"matrix": matrix, "ops": ops}, separators=(",", ":"))
        valid, test = acc[(spec, epochs)]
        valid.append(100.0 * final.validation_accuracy)
        test.append(100.0 * final.test_accuracy)
    if not acc:
        raise LabelFormatError(f"{path} holds no NAS-Bench-101 records")
    budget = max(e for _, e in acc)
    by_key: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for (spec, epochs), (valid, test) in acc.items():
        if epochs == budget:  # isomorphic specs share a key: their repeats are pooled
            pooled = by_key[space.parse(spec)]
            pooled[0].extend(valid)
            pooled[1].extend(test)
    rows = []
    for key, (valid, test) in by_key.items():
        epochs = budget
        agg = f"mean of {len(valid)} repeats"
        rows.append(
            _row(space.name, key, "cifar10", "valid", sum(valid) / len(valid), source, epochs=epochs, seed_agg=agg)
        )
        rows.append(
            _row(space.name, key, "cifar10", "test", sum(test) / len(test), source, epochs=epochs, seed_agg=agg)
        )
    return rows


def read_zc_json(space: SearchSpace, path: Path, **_) -> list[dict]:
    """NAS-Bench-Suite-Zero `zc_<space>.json`: {dataset: {arch: {"val_accuracy": ..., proxy: {...}}}}."""
    data = _read_json(path)
    source = _source(path)
    rows = []
    for dataset, archs in data.items():
        for arch_text, rec in archs.items():
            if "val_accuracy" in rec:
                rows.append(
                    _row(
                        space.name,
                        space.parse(arch_text),
                        dataset,
                        "valid",
                        rec["val_accuracy"],
                        source,
                        seed_agg="NAS-Bench-Suite-Zero",
                    )
                )
    return rows


READERS: dict[str, Callable[..., list[dict]]] = {
    "csv": read_csv,
    "jsonl": read_jsonl,
    "nb201-pth": read_nb201_pth,
    "nats-tss": read_nats_tss,
    "nds-json": read_nds_json,
    "zc-json": read_zc_json,
    "nb101-tfrecord": read_nb101_tfrecord,
}


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "nats-tss"
    name = path.name
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".jsonl"):
        return "jsonl"
    if name.endswith(".pth"):
        return "nb201-pth"
    if name.endswith(".tfrecord"):
        return "nb101-tfrecord"
    if name.startswith("zc_") and name.endswith(".json"):
        return "zc-json"
    if name.endswith(".json"):
        return "nds-json"
    raise LabelFormatError(f"cannot tell the format of {path}; pass --format one of {', '.join(FORMATS[1:])}")


def import_labels(store: str, space_name: str, path: str, fmt: str = "auto", trust_pickle: bool = False) -> int:
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"label file {p} does not exist")
    if fmt not in FORMATS:
        raise LabelFormatError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    space = get_space(space_name)
    keys = _SpecRecorder(space)
    rows = READERS[detect_format(p) if fmt == "auto" else fmt](keys, p, trust_pickle=trust_pickle)
    if not rows:
        raise LabelFormatError(f"{p} holds no labels for {space_name}")
    graphs = graph_rows(space, keys.specs.items())
    with Catalog(store).writer() as w:  # no reconcile: an ingest may be running on this store
        w.add_graphs(graphs)
        return w.import_labels(rows)


class _SpecRecorder:
    """The space, remembering what each parsed arch key was parsed from: NB101's key (a hash) cannot
    rebuild its graph, so the import records each labeled architecture's graph from its text."""

    def __init__(self, space: SearchSpace):
        self.space = space
        self.name = space.name
        self.specs: dict[str, str] = {}

    def parse(self, text: str) -> str:
        key, spec = self.space.key_and_spec(text)
        self.specs.setdefault(key, spec)
        return key
