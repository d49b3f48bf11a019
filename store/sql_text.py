"""The one way the store puts a name or a string into SQL text, where a parameter cannot stand (a
column, a view, a list of files inside `read_parquet`): quoted, so a name such as a proxy's can never
end the identifier and start a statement."""

from __future__ import annotations


def ident(name: str) -> str:
    """`name` as a quoted SQL identifier (a column, table or view)."""
    return '"' + str(name).replace('"', '""') + '"'


def literal(text: str) -> str:
    """`text` as a quoted SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"
