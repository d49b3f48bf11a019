"""`key=value` options (predictor options, space options) as typed values."""

from __future__ import annotations

from typing import Any

from zcpipe.pipeline.errors import ConfigError


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
