"""What an import does with label values that are not one clean number per architecture.

The policy, the same for every format (docs/sql.md, "Ground truth"):

- a NaN or infinite value is a missing measurement, not a label: the row is skipped and counted;
- several rows of one file for the same architecture and the same label (same dataset, split, metric,
  epochs, seed aggregation and detail) become one row holding their mean: a file's repeated seeds, or
  NAS-Bench-101's isomorphic cells, which share one arch key. Training would average them anyway, and
  one row per architecture keeps a cell from counting twice in `archs_labeled` (or from landing in both
  a training and a test split);
- a value that is not a number at all fails the whole import (the readers say which line).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# What makes two rows the same measurement of the same architecture.
_SAME = ("space", "arch", "label", "dataset", "split", "metric", "epochs", "seed_agg", "detail", "source")


@dataclass
class ImportReport:
    """What a label import stored and what it did to the file's rows on the way."""

    rows: int = 0
    non_finite: int = 0  # NaN/inf values skipped
    merged: int = 0  # rows folded into another row of the same architecture
    merged_archs: int = 0  # architectures that had repeated rows

    def line(self, space: str, file: str) -> str:
        out = f"imported {self.rows} label rows for {space} from {file}"
        notes = []
        if self.non_finite:
            notes.append(f"skipped {self.non_finite} NaN/infinite values (a missing measurement is no label)")
        if self.merged:
            notes.append(
                f"merged {self.merged + self.merged_archs} rows repeating {self.merged_archs} architectures into "
                "their mean (one label row per architecture)"
            )
        return out + (f"; {'; '.join(notes)}" if notes else "")


def apply_policy(rows: list[dict]) -> tuple[list[dict], ImportReport]:
    """The rows to store (finite, one per architecture and label), and what was skipped or merged."""
    report = ImportReport()
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if not math.isfinite(r["value"]):
            report.non_finite += 1
            continue
        groups.setdefault(tuple(r.get(k) for k in _SAME), []).append(r)
    out = []
    for same in groups.values():
        row = dict(same[0])  # keeps the first row's source_row
        if len(same) > 1:
            row["value"] = math.fsum(r["value"] for r in same) / len(same)
            report.merged += len(same) - 1
            report.merged_archs += 1
        out.append(row)
    report.rows = len(out)
    return out, report
