"""`key=value` options (predictor options, space options) as typed values."""

from __future__ import annotations

from dataclasses import MISSING, field
from typing import Any

from zcpipe.pipeline.errors import ConfigError


def setting(default: Any = MISSING, *, help: str, flag: str | None = None, factory: Any = MISSING) -> Any:
    """A config field and what the command line shows for it, declared once: its default, its help and,
    where it is not `--` and the name with dashes, its flag (`--all`; `" /--no-compact"` for a switch
    that only turns a default on off). The CLI builds its options from these (zcpipe/cli/options.py)."""
    meta = {"help": help, "flag": flag}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def parse_pairs(pairs: list[str], field: str, example: str) -> dict[str, Any]:
    """`key=value` strings to a dict for config field `field`; values become int, float or bool where
    they read as one."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"`{field}` {pair!r}: write it as key=value, e.g. {example}", options=[field])
        out[key.strip()] = _value(text.strip())
    return out


def _value(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
