"""The label import: read a benchmark file with its format's reader, record the rows and the graphs."""

from __future__ import annotations

from pathlib import Path

from zcpipe.pipeline.errors import LabelFileNotFoundError, LabelFormatError
from zcpipe.pipeline.graph_rows import graph_rows
from zcpipe.pipeline.labels.detect import detect_format, reader
from zcpipe.pipeline.labels.policy import ImportReport, apply_policy
from zcpipe.store import Catalog
from zcpipe.workers.spaces import SearchSpace, get_space


def import_labels(
    store: str, space_name: str, path: str, fmt: str = "auto", trust_pickle: bool = False
) -> ImportReport:
    """Read a label file of `space_name` and record its rows (and each labeled architecture's graph);
    re-importing a file replaces what it gave before. NaN/inf values are skipped and repeated rows of one
    architecture merged into their mean (pipeline/labels/policy.py); the report says how many."""
    p = Path(path).expanduser()
    if not p.exists():
        raise LabelFileNotFoundError(f"label file {p} does not exist")
    fmt = detect_format(p) if fmt == "auto" else fmt
    read = reader(fmt)  # an unknown `format` names the choices
    space = get_space(space_name)
    keys = _SpecRecorder(space)
    try:
        rows = read(keys, p, trust_pickle=trust_pickle)
    except UnicodeDecodeError:
        raise LabelFormatError(
            f"{p} is not UTF-8 text, so it cannot be a {fmt} label file; name its real format (`format`)",
            options=["format"],
        ) from None
    rows, report = apply_policy(rows)
    if not rows:
        raise LabelFormatError(
            f"{p} holds no labels for {space_name}"
            + (f" ({report.non_finite} values were NaN or infinite)" if report.non_finite else "")
        )
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
