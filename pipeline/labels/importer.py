"""The label import: read a benchmark file with its format's reader, record the rows and the graphs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from zcpipe.pipeline.errors import LabelFileNotFoundError, LabelFormatError
from zcpipe.pipeline.graph_rows import graph_rows
from zcpipe.pipeline.labels.detect import FORMATS, detect_format
from zcpipe.pipeline.labels.nb101 import read_nb101_tfrecord
from zcpipe.pipeline.labels.nb201 import read_nats_tss, read_nb201_pth
from zcpipe.pipeline.labels.nds import read_nds_json
from zcpipe.pipeline.labels.plain import read_csv, read_jsonl
from zcpipe.pipeline.labels.policy import ImportReport, apply_policy
from zcpipe.pipeline.labels.zc import read_zc_json
from zcpipe.store import Catalog
from zcpipe.workers.spaces import SearchSpace, get_space

READERS: dict[str, Callable[..., list[dict]]] = {
    "csv": read_csv,
    "jsonl": read_jsonl,
    "nb201-pth": read_nb201_pth,
    "nats-tss": read_nats_tss,
    "nds-json": read_nds_json,
    "zc-json": read_zc_json,
    "nb101-tfrecord": read_nb101_tfrecord,
}


def import_labels(
    store: str, space_name: str, path: str, fmt: str = "auto", trust_pickle: bool = False
) -> ImportReport:
    """Read a label file of `space_name` and record its rows (and each labeled architecture's graph);
    re-importing a file replaces what it gave before. NaN/inf values are skipped and repeated rows of one
    architecture merged into their mean (pipeline/labels/policy.py); the report says how many."""
    p = Path(path).expanduser()
    if not p.exists():
        raise LabelFileNotFoundError(f"label file {p} does not exist")
    if fmt not in FORMATS:
        raise LabelFormatError(f"`format` {fmt!r}: choose one of {', '.join(FORMATS)}", options=["format"])
    space = get_space(space_name)
    keys = _SpecRecorder(space)
    fmt = detect_format(p) if fmt == "auto" else fmt
    try:
        rows = READERS[fmt](keys, p, trust_pickle=trust_pickle)
    except UnicodeDecodeError:
        raise LabelFormatError(
            f"{p} is not UTF-8 text, so it cannot be a {fmt} label file; name its real format (`format`)",
            options=["format"],
        ) from None
    rows, report = apply_policy(rows)
    if not rows:
        raise LabelFormatError(f"{p} holds no labels for {space_name}" + (
            f" ({report.non_finite} values were NaN or infinite)" if report.non_finite else ""))
    graphs = graph_rows(space, keys.specs.items())
    with Catalog(store).writer() as w:  # no reconcile: an ingest may be running on this store
        w.add_graphs(graphs)
        w.import_labels(rows)
    return report


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
