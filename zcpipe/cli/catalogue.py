"""`zcpipe spaces | proxies | predictors`: what is registered."""

from __future__ import annotations

import typer


def spaces() -> None:
    """List the registered search spaces."""
    from zcpipe.pipeline import catalogue

    typer.echo("\n".join(catalogue.spaces()))


def list_proxies() -> None:
    """List the registered proxies with their scope and pass."""
    from zcpipe.pipeline import catalogue

    for name, scope, pass_name in catalogue.proxies():
        typer.echo(f"{name:10s} {scope:6s} {pass_name}")


def list_predictors() -> None:
    """List the registered predictors and their options."""
    from zcpipe.pipeline import catalogue

    for name, summary, options in catalogue.predictors():
        typer.echo(f"{name:18s} {summary}")
        if options:
            opts = " ".join(f"{k}={v}" for k, v in options.items())
            typer.echo(f"{'':18s} options (--hp key=value): {opts}")


def register(app: typer.Typer) -> None:
    app.command("predictors")(list_predictors)
    app.command()(spaces)
    app.command("proxies")(list_proxies)
