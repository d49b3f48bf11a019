"""Which reader a label file needs, told by its name."""

from __future__ import annotations

from pathlib import Path

from zcpipe.pipeline.errors import LabelFormatError

FORMATS = ("auto", "csv", "jsonl", "nb201-pth", "nats-tss", "nds-json", "zc-json", "nb101-tfrecord")


def detect_format(path: Path) -> str:
    """The format of a label file, from its name (a folder is NATS-Bench's topology benchmark)."""
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
    raise LabelFormatError(
        f"cannot tell the format of {path}; name it (`format`): one of {', '.join(FORMATS[1:])}", options=["format"]
    )
