"""The label-format registry: each reader declares the file names it reads where it is defined,
`@LABEL_FORMATS.register("csv", pattern="*.csv")`; `folder=True` for a format that is a directory."""

from __future__ import annotations

from collections.abc import Callable

from zcpipe.pipeline.errors import LabelFormatError
from zcpipe.registry import Registry

# A reader: (the space's spec recorder, the path, trust_pickle=...) -> label rows.
Reader = Callable[..., list[dict]]

LABEL_FORMATS: Registry[Reader] = Registry(
    "label format", error=LabelFormatError, attrs={"pattern": "", "folder": False}, option="format"
)
