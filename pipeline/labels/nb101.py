"""The official NAS-Bench-101 tfrecord (parsed without TensorFlow: nb101_tfrecord.py)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from zcpipe.pipeline.errors import LabelFormatError
from zcpipe.pipeline.labels.formats import LABEL_FORMATS
from zcpipe.pipeline.labels.rows import label_row, source_of
from zcpipe.workers.spaces import SearchSpace


@LABEL_FORMATS.register("nb101-tfrecord", pattern="*.tfrecord")
def read_nb101_tfrecord(space: SearchSpace, path: Path, **_) -> list[dict]:
    """The official NAS-Bench-101 tfrecord: per cell, the mean over its repeats of the final validation
    and test accuracy (in percent, as the other label files) at the file's largest epoch budget."""
    from zcpipe.pipeline.labels.nb101_tfrecord import decode_record, read_records

    if space.name != "nb101":
        raise LabelFormatError(f"{path} is a NAS-Bench-101 tfrecord; import it into `space` nb101", options=["space"])
    source = source_of(path)
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
            label_row(space.name, key, "cifar10", "valid", sum(valid) / len(valid), source, epochs=epochs, seed_agg=agg)
        )
        rows.append(
            label_row(space.name, key, "cifar10", "test", sum(test) / len(test), source, epochs=epochs, seed_agg=agg)
        )
    return rows
