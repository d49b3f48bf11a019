"""Which reader a label file needs, told by its name (or, for a folder, by the formats that are one)."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

from zcpipe.pipeline.errors import LabelFormatError
from zcpipe.pipeline.labels.formats import LABEL_FORMATS, Reader


def _load_builtin() -> None:
    from zcpipe.pipeline.labels import nb101, nb201, nds, plain, zc  # noqa: F401


LABEL_FORMATS.set_loader(_load_builtin)


def formats() -> list[str]:
    """Every format a label file may be named as, `auto` first."""
    return ["auto", *LABEL_FORMATS.names()]


def reader(fmt: str) -> Reader:
    """The reader registered as `fmt`; LabelFormatError names the choices."""
    return LABEL_FORMATS.get(fmt)


def detect_format(path: Path) -> str:
    """The format of a label file from its name: of the patterns that match it, the longest (the most
    specific: `zc_*.json` before `*.json`); a folder is the format registered as one."""
    matches = [
        (len(r.pattern), name)
        for name, r in LABEL_FORMATS.entries()
        if (r.folder if path.is_dir() else not r.folder and fnmatch(path.name, r.pattern))
    ]
    if not matches:
        raise LabelFormatError(
            f"cannot tell the format of {path}; name it (`format`): one of {', '.join(formats()[1:])}",
            options=["format"],
        )
    return max(matches)[1]
