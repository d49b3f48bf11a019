"""`zcpipe sql` is confined to the store: reads only, and no file outside the store's own shards."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import cli, commit_arch_rows


@pytest.fixture
def store(tmp_path):
    commit_arch_rows(tmp_path / "s", "nb201", [{"space": "nb201", "arch": "a", "config_hash": "c",
                                                "shard_id": "s", "status": "ok"}], ["synflow"])  # fmt: skip
    (tmp_path / "secret.csv").write_text("password\nhunter2\n")
    return tmp_path / "s"


def _one_error_line(r) -> str:
    assert r.returncode == 2, r.stdout
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return line


def test_views_and_the_stores_own_files_answer(store):
    r = cli("sql", "--store", store, "--format", "csv", "SELECT arch, status FROM archs")
    assert r.returncode == 0 and r.stdout == "arch,status\na,ok\n"
    shard = next((store / "shards").rglob("archs.parquet"))
    r = cli("sql", "--store", store, "--format", "csv", f"SELECT count(*) AS n FROM read_parquet('{shard}')")
    assert r.returncode == 0 and r.stdout == "n\n1\n"


@pytest.mark.parametrize(
    "query,message",
    [
        ("SELECT * FROM read_csv('{secret}')", "Permission Error"),
        ("SELECT * FROM read_text('{outside}')", "Permission Error"),  # any file of the user's: this test
        ("SET enable_external_access = true", "only SELECT (and EXPLAIN) statements run here, not SET"),
        ("COPY (SELECT 1) TO '{store}/x.csv'", "not COPY"),
        ("ATTACH '{secret}.db' AS other", "not ATTACH"),
        ("SELECT 1; COPY (SELECT 1) TO 'y.csv'", "not SELECT, COPY"),
    ],
)
def test_anything_else_is_refused_in_one_line(store, query, message):
    outside = Path(__file__).resolve()
    r = cli("sql", "--store", store, query.format(secret=store.parent / "secret.csv", store=store, outside=outside))
    assert message in _one_error_line(r)
    assert not (store / "x.csv").exists()
