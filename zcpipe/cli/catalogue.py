"""`zcpipe spaces | proxies | predictors`: what is registered."""

from __future__ import annotations

import typer


def spaces() -> None:
    """List the registered search spaces and their options (`--space-opt key=value`)."""
    from zcpipe.pipeline import catalogue

    for name, options in catalogue.spaces():
        opts = " ".join(f"{k}={v}" for k, v in options.items())
        typer.echo(f"{name:10s} {opts}".rstrip())


def datasets() -> None:
    """List the registered datasets: classes, input shape, whether they read files (`--data-root`)."""
    from zcpipe.pipeline import catalogue

    for name, classes, shape, needs_root in catalogue.datasets():
        if not classes:
            typer.echo(f"{name:18s} classes and input shape from the pack; reads --data-root")
            continue
        files = "reads --data-root" if needs_root else "generated, no files"
        typer.echo(f"{name:18s} {classes:4d} classes, input {'x'.join(map(str, shape))}; {files}")


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
    app.command()(datasets)
    app.command("proxies")(list_proxies)
