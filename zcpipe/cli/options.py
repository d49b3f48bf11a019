"""Command-line options built from a configuration dataclass, so each option is declared once: its
name, type, default and help are the field's (`zcpipe.pipeline.options.setting`).

How a field's type reads on the command line: `tuple[str, ...]` as comma-separated names, `dict` as a
repeatable `key=value`, `bool` as a switch (one-sided, by its declared flag), anything else as itself.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from typing import Any

import typer

from zcpipe.cli.common import FLAGS, names


def _cli_type(hint: Any) -> Any:
    """The type typer parses for a field's type hint."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        return str
    if hint is dict or origin is dict:
        return list[str] | None
    return hint


def _to_field(hint: Any, value: Any, field: str) -> Any:
    """A parsed option's value as the field's type."""
    from zcpipe.pipeline import parse_pairs

    if typing.get_origin(hint) is tuple:
        return names(value)
    if hint is dict or typing.get_origin(hint) is dict:
        return parse_pairs(value or [], field, "width=32")
    return value


def config_options(config_cls: type) -> list[inspect.Parameter]:
    """One keyword parameter per field of `config_cls`, each a typer option with the field's default
    and help; records each field's flag for error messages (`cli.common.flag`)."""
    hints = typing.get_type_hints(config_cls)
    params = []
    for f in dataclasses.fields(config_cls):
        meta = f.metadata
        if "help" not in meta:
            raise TypeError(f"{config_cls.__name__}.{f.name} declares no help: declare it with `setting`")
        if meta.get("flag"):
            FLAGS[f.name] = meta["flag"].split("/")[-1] if meta["flag"].startswith(" /") else meta["flag"]
        if f.default is not dataclasses.MISSING:
            default = ",".join(f.default) if typing.get_origin(hints[f.name]) is tuple else f.default
        else:
            default = None if f.default_factory is not dataclasses.MISSING else ...
        decls = [meta["flag"]] if meta.get("flag") else []
        option = typer.Option(default, *decls, help=meta["help"])
        kind = inspect.Parameter.KEYWORD_ONLY
        params.append(inspect.Parameter(f.name, kind, default=option, annotation=_cli_type(hints[f.name])))
    return params


def config_command(
    config_cls: type, run: Callable[..., None], extra: list[inspect.Parameter] = (), doc: str | None = None
) -> Callable[..., None]:
    """A typer command taking `config_cls`'s fields as options (and `extra` ones, which are not config):
    it builds the config from them and calls `run(config, **extra)`."""
    hints = typing.get_type_hints(config_cls)
    fields = [f.name for f in dataclasses.fields(config_cls)]
    params = [*config_options(config_cls), *extra]

    def command(**kwargs: Any) -> None:
        config = {name: _to_field(hints[name], kwargs.pop(name), name) for name in fields}
        run(config, **kwargs)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = doc or run.__doc__
    return command
