"""What every command shares: the --store option, one-line errors with the fix, output tables."""

from __future__ import annotations

import decimal
import errno
import io
import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import pyarrow as pa
import typer

from zcpipe.errors import BusyError, CorruptError, NotFoundError, ZcpipeError
from zcpipe.pipeline import defaults

StoreOpt = Annotated[
    str, typer.Option(help="store: a folder (created if missing) or an fsspec URL such as s3://bucket/prefix")
]
DEFAULT_STORE = defaults.STORE
# Config fields whose flag is not `--` + the field with dashes; a config whose options are built from
# its fields adds its own here (zcpipe/cli/options.py).
FLAGS = {
    "hparams": "--hp",
    "hpo_trials": "--hpo",
    "fmt": "--format",
}


def flag(field: str) -> str:
    """The command-line flag of a config field."""
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def fail(message: str) -> None:
    """Print `error: message` on stderr and exit with status 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _store_access_errors() -> tuple[type[BaseException], ...]:
    """Failures to reach or be let into a remote store (S3 errors arrive as botocore's or, translated by
    s3fs, as PermissionError)."""
    from botocore.exceptions import BotoCoreError

    return (PermissionError, BotoCoreError)


def describe(e: BaseException, store: str | None = None) -> str:
    """One line for the user: the error's first line with its settings named as flags, and what to do."""
    line = (str(e).splitlines() or [type(e).__name__])[0].strip() or type(e).__name__
    if isinstance(e, ZcpipeError):
        line = re.sub(r"`(\w+)`", lambda m: flag(m[1]) if m[1] in e.options else m[0], line)
        for words, command in _remedies(store or "STORE").items():
            line = line.replace(words, command)
        return line + _hint(e, store)
    if isinstance(e, FileNotFoundError) and "bucket does not exist" in line:
        return line + ": create the bucket first, or fix --store"
    return line + (
        " (the store could not be reached or refused access: check --store, AWS_ENDPOINT_URL and the "
        "credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
    )


def _remedies(store: str) -> dict[str, str]:
    """Remedies the library words in prose, and the command that is each."""
    return {
        "reconciling the store": f"`zcpipe store reconcile --store {store}`",
        "rebuilding the catalog from the store": f"`zcpipe store reconcile --rebuild --store {store}`",
        "ingest some first": f"run `zcpipe ingest --store {store} ...` first",
        "import some first": f"import some with `zcpipe labels import --store {store} ...`",
        "train one first": "train one with `zcpipe train`",
        "a label import": "`zcpipe labels import`",
        "the store's info describes them": f"`zcpipe store info --store {store}` describes them",
    }


def _hint(e: ZcpipeError, store: str | None) -> str:
    from zcpipe.pipeline.errors import ClusterTooSmallError, IngestStalledError

    where = store or "STORE"
    if isinstance(e, ClusterTooSmallError):
        return ": lower --gpus, --actors-per-gpu or --workers, or add nodes to the cluster"
    if isinstance(e, IngestStalledError):
        return ": rerun to resume; raise --start-timeout / --stall-timeout if the cluster or the networks are slow"
    if isinstance(e, NotFoundError) and hasattr(e, "has_shards"):  # a store without a catalog
        if e.has_shards:
            return f": `zcpipe store reconcile --store {where}` registers the shards it holds"
        return f": run `zcpipe ingest --store {where} ...` first"
    if isinstance(e, CorruptError) and "unreadable" in str(e):
        return f"; `zcpipe store reconcile --store {where}` verifies every shard and quarantines a damaged one"
    if isinstance(e, BusyError) and "another ingest" in str(e):
        return "; wait for it or use another --store"
    return ""


@contextmanager
def handled(store: str | None = None) -> Iterator[None]:
    """Turn zcpipe's errors (and a store that cannot be reached) into one line; anything else, a bug,
    keeps its traceback."""
    try:
        yield
    except ZcpipeError as e:
        fail(describe(e, store))
    except FileNotFoundError as e:
        if "bucket does not exist" not in str(e):
            raise
        fail(describe(e, store))
    except _store_access_errors() as e:
        fail(describe(e, store))
    except OSError as e:  # the disk said no: nothing to debug, something to do
        if e.errno == errno.EROFS:
            fail(f"cannot write {e.filename or store}: read-only file system; copy the store somewhere writable")
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            fail(f"cannot write {e.filename or store}: {e.strerror}; free some space and run it again")
        raise


def names(text: str | None) -> tuple[str, ...]:
    """Comma-separated names as a tuple (empty for None)."""
    return tuple(t.strip() for t in text.split(",") if t.strip()) if text else ()


def render(table, fmt: str, wide: bool = False) -> str:
    """An Arrow table as a printed table, CSV or JSON. A table fits the terminal: values are never cut (an arch
    key is the row's name), so the columns that do not fit are left out, and a last line says how to see them
    (`wide`: every column, however wide)."""
    import polars as pl

    if fmt == "json":
        return json.dumps(table.to_pylist(), default=_plain) + "\n"
    for i, field in enumerate(table.schema):  # CSV and the table printer want flat values: nested ones as JSON
        if pa.types.is_nested(field.type):
            text = [None if v is None else json.dumps(v, default=_plain) for v in table.column(i).to_pylist()]
            table = table.set_column(i, field.name, pa.array(text, pa.string()))
    df = pl.from_arrow(table)
    if not isinstance(df, pl.DataFrame):
        df = df.to_frame()
    if fmt == "csv":
        buf = io.StringIO()
        df.write_csv(buf)
        return buf.getvalue()
    shown = len(df.columns) if wide else _columns_that_fit(df, shutil.get_terminal_size((120, 24)).columns)
    more = len(df.columns) - shown
    with pl.Config(tbl_rows=100, tbl_cols=-1, fmt_str_lengths=200, tbl_width_chars=65_000):
        out = f"{df.select(df.columns[:shown])}\n"
    if more:
        what = "1 more column" if more == 1 else f"{more} more columns"
        out += f"({what}: {', '.join(df.columns[shown:])}; --wide shows them, --format csv too)\n"
    return out


def _columns_that_fit(df, width: int) -> int:
    """How many leading columns of `df` fit in `width` characters as polars prints them (at least one)."""
    used, n = 1, 0
    for name in df.columns:
        cells = [len(str(v)) for v in df[name].head(100).to_list()]
        used += max([len(name), len(str(df[name].dtype)), *cells]) + 3
        if used > width and n:
            break
        n += 1
    return n


def _plain(value):
    """JSON for what Arrow hands back beyond JSON's types (decimals, bytes, timestamps)."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value.hex() if isinstance(value, bytes) else str(value)


def check_format(fmt: str, choices: tuple[str, ...]) -> None:
    if fmt not in choices:
        fail(f"--format {fmt!r}: choose {', '.join(choices[:-1])} or {choices[-1]}")
