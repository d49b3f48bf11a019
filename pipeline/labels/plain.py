"""Plain label files: CSV with an `arch` column, or JSON lines, one measurement column per label."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from zcpipe.pipeline.errors import LabelFormatError
from zcpipe.pipeline.labels.formats import LABEL_FORMATS
from zcpipe.pipeline.labels.rows import PLAIN_COLUMNS, STRUCTURE_KEYS, label_row, source_of
from zcpipe.workers.spaces import ArchError, SearchSpace


def plain_rows(space: SearchSpace, records: Iterator[tuple[int, dict]], path: Path) -> list[dict]:
    source = source_of(path)
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
            try:
                value = float(v)
            except (TypeError, ValueError):
                raise LabelFormatError(
                    f"{path.resolve()!s}:{n}: column {col!r} holds {v!r}, which is not a number; fix or remove it"
                ) from None
            dataset, split, epochs, agg, *name = (
                known.get(col, (*col.rsplit("_", 1), None, None)) if "_" in col else (col, "value", None, None)
            )
            rows.append(
                label_row(
                    space.name,
                    key,
                    dataset,
                    split,
                    value,
                    source,
                    epochs=epochs,
                    seed_agg=agg,
                    row=n,
                    label=name[0] if name else None,
                )
            )
    if errors:
        raise LabelFormatError(f"{len(errors)} rows of {path} do not parse as {space.name}: " + "; ".join(errors[:3]))
    return rows


@LABEL_FORMATS.register("csv", pattern="*.csv")
def read_csv(space: SearchSpace, path: Path, **_) -> list[dict]:
    # utf-8-sig: a byte-order mark (as spreadsheet programs write) is not part of the first column's name.
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if "arch" not in (reader.fieldnames or []):
            raise LabelFormatError(f"{path} has no `arch` column (columns: {reader.fieldnames})")
        return plain_rows(space, enumerate(reader, start=2), path)


@LABEL_FORMATS.register("jsonl", pattern="*.jsonl")
def read_jsonl(space: SearchSpace, path: Path, **_) -> list[dict]:
    def records():
        with path.open(encoding="utf-8-sig") as f:
            for n, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        yield n, json.loads(line)
                    except ValueError:
                        raise LabelFormatError(f"{path}:{n} is not JSON") from None

    return plain_rows(space, records(), path)
