"""The store against someone looking for trouble: writes through `sql`, damaged or forged shards, unbounded
queries. Each case is one a user or an attacker tried (issue "trust"); each fails on the code before it."""

from __future__ import annotations

import json
import re
import shutil
import tempfile

import duckdb
import pytest

from tests.conftest import REFERENCE_STORE
from tests.helpers import cli, commit_arch_rows, nb201_labels_for
from zcpipe.pipeline import import_labels
from zcpipe.store import Catalog
from zcpipe.store.catalog.confined import lock_down, memory_limit_bytes


@pytest.fixture
def store(tmp_path):
    row = {"space": "nb201", "arch": "a", "config_hash": "c", "shard_id": "s", "status": "ok", "synflow": 1.0}
    commit_arch_rows(tmp_path / "s", "nb201", [row], ["synflow"])
    (tmp_path / "s" / "models" / "m").mkdir(parents=True)
    (tmp_path / "s" / "models" / "m" / "config.json").write_text("{}")
    return tmp_path / "s"


def _tree(root):
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def _refused(r) -> str:
    assert r.returncode == 2, r.stdout
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return line


# ---------------------------------------------------------------------------------------------- sql writes


@pytest.mark.parametrize(
    "query,message",
    [
        ("EXPLAIN ANALYZE COPY (SELECT 1) TO '{store}/x.csv'", "not EXPLAIN COPY"),
        (
            "EXPLAIN ANALYZE COPY (SELECT synflow * 1e99 AS synflow FROM archs) TO '{shard}/archs.parquet'",
            "not EXPLAIN COPY",
        ),
        ("EXPLAIN (FORMAT json) COPY (SELECT 1) TO '{store}/x.csv'", "not EXPLAIN COPY"),
        ("explain   analyze\n copy (select 1) to '{store}/x.csv'", "not EXPLAIN COPY"),
        ("EXPLAIN ANALYZE EXPLAIN ANALYZE COPY (SELECT 1) TO '{store}/x.csv'", "error: "),
        (
            "COPY (SELECT '{{}}' AS j) TO '{shard}/manifest.json' (FORMAT json)",
            "not COPY",
        ),
        ("COPY (SELECT 1) TO '{store}/models/m/config.json'", "not COPY"),
        ("COPY (SELECT 1) TO '{store}/ingest.lock'", "not COPY"),
        ("PREPARE p AS COPY (SELECT 1) TO '{store}/x.csv'", "not PREPARE"),
        ("EXECUTE p", "not EXECUTE"),
        ("SELECT * FROM query('COPY (SELECT 1) TO ''{store}/x.csv''')", "Expected a single SELECT statement"),
        ("WITH t AS (SELECT 1) SELECT * FROM t; COPY (SELECT 1) TO '{store}/x.csv'", "not SELECT, COPY"),
        ("INSTALL httpfs", "not LOAD"),
        ("CALL checkpoint()", "not CALL"),
    ],
)
def test_sql_writes_nothing_whatever_it_nests(store, query, message):
    shard = next((store / "shards").glob("*/*/*"))
    before = _tree(store)
    r = cli("sql", "--store", store, query.format(store=store, shard=shard))
    assert message in _refused(r)
    assert _tree(store) == before


def test_even_past_the_statement_check_no_file_of_the_store_is_writable(store):
    """Wall 2 alone: a connection locked down as `sql`'s is, running a COPY directly, cannot write any file
    in the store (new, catalog, lock, manifest or a model's config)."""
    shard = next((store / "shards").glob("*/*/*"))
    before = _tree(store)
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    with tempfile.TemporaryDirectory() as spill:
        lock_down(con, [str(shard / "archs.parquet")], spill)
        for target in ("x.csv", "catalog.duckdb", "ingest.lock", f"{shard.relative_to(store)}/manifest.json",
                       "models/m/config.json"):  # fmt: skip
            with pytest.raises((duckdb.PermissionException, duckdb.BinderException)):
                con.execute(f"COPY (SELECT 1 AS a) TO '{store / target}' (FORMAT csv)")
        with pytest.raises(duckdb.Error):  # the lock-down itself cannot be undone
            con.execute("SET enable_external_access = true")
        assert con.execute(f"SELECT count(*) FROM read_parquet('{shard / 'archs.parquet'}')").fetchone() == (1,)
    con.close()
    assert _tree(store) == before


def test_explain_of_a_select_still_answers(store):
    r = cli("sql", "--store", store, "--format", "csv", "EXPLAIN ANALYZE SELECT count(*) FROM archs")
    assert r.returncode == 0 and "analyzed_plan" in r.stdout


# ---------------------------------------------------------------------------------------------- bounds


def test_sql_is_interrupted_at_its_time_limit(store):
    endless = "SELECT count(*) FROM range(1e9::BIGINT) a, range(1e9::BIGINT) b"
    r = cli("sql", "--store", store, "--timeout", "1", endless)
    assert "ran past its time limit of 1 s" in _refused(r) and "--timeout" in r.stderr


def test_sql_runs_under_a_memory_limit_and_spills_outside_the_store(store):
    r = cli("sql", "--store", store, "--format", "csv",
            "SELECT current_setting('memory_limit') AS m, current_setting('temp_directory') AS t")  # fmt: skip
    assert r.returncode == 0
    limit, spill = r.stdout.splitlines()[1].split(",")
    assert str(store) not in spill and "zcpipe-sql-spill" in spill
    units = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
    number, unit = limit.split()
    assert float(number) * units[unit] <= memory_limit_bytes() * 1.01
    assert memory_limit_bytes() < 0.6 * _physical_memory()


def _physical_memory() -> int:
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


# ---------------------------------------------------------------------------------------------- damaged shards


@pytest.fixture(scope="module")
def labeled_reference(tmp_path_factory):
    """The shared 3,000-cell store with its real labels, reconciled: made once, copied by each test."""
    store = tmp_path_factory.mktemp("reference") / "store"
    shutil.copytree(REFERENCE_STORE, store, copy_function=shutil.copy)
    for p in store.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    with Catalog(store).writer() as w:
        w.reconcile()
    import_labels(str(store), "nb201", nb201_labels_for(Catalog(store).query("SELECT arch FROM archs")
                                                      .column("arch").to_pylist(), store.parent))  # fmt: skip
    return store


@pytest.fixture
def damaged_store(labeled_reference, tmp_path):
    """A copy of the shared 3,000-cell store with its real labels, reconciled: (store, one shard)."""
    store = tmp_path / "store"
    shutil.copytree(labeled_reference, store)
    shard = sorted((store / "shards" / "nb201").glob("*/*"))[5]
    return store, shard


def _flip_byte(path, where=0.5):
    data = bytearray(path.read_bytes())
    i = int(len(data) * where)
    data[i] ^= 0x5A
    path.write_bytes(bytes(data))


DAMAGE = {
    "missing zarr chunk": lambda s: (s / "tensors.zarr/values/c/0/0/0").unlink(),
    "changed byte in archs.parquet": lambda s: _flip_byte(s / "archs.parquet"),
    "truncated layers.parquet": lambda s: (s / "layers.parquet").write_bytes((s / "layers.parquet").read_bytes()[:100]),
    "deleted manifest": lambda s: (s / "manifest.json").unlink(),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_shard_is_refused_by_sql_and_train_naming_it(damaged_store, damage):
    store, shard = damaged_store
    DAMAGE[damage](shard)
    for args in (["sql", "SELECT max(snip) FROM archs"],
                 ["train", "--space", "nb201", "--predictor", "proxy:snip", "--target", "cifar10_valid",
                  "--train-size", "100"]):  # fmt: skip
        line = _refused(cli(*args, "--store", store))
        assert shard.name in line, line
        assert f"zcpipe store reconcile --store {store}" in line, line


def test_a_changed_byte_found_once_is_found_again_and_a_clean_store_is_remembered(damaged_store):
    store, shard = damaged_store
    assert Catalog(store).query("SELECT count(*) AS n FROM archs").to_pylist() == [{"n": 3000}]
    _flip_byte(shard / "tensors.zarr" / "mask" / "c" / "0" / "0")  # same size; mtime changes
    from zcpipe.store.tensor_reader import load_training_set

    with pytest.raises(Exception, match=f"{shard.name}: tensors.zarr/mask/c/0/0 does not match its checksum"):
        load_training_set(store, "nb201")
    with pytest.raises(Exception, match="does not match its checksum"):
        load_training_set(store, "nb201")


def test_reconcile_quarantines_what_readers_refuse_and_the_rest_reads(damaged_store):
    store, shard = damaged_store
    n = len(list((shard / "archs.parquet").parent.glob("*")))
    assert n
    (shard / "tensors.zarr/values/c/0/0/0").unlink()
    r = cli("store", "reconcile", "--store", store)
    assert r.returncode == 0, r.stderr
    assert (store / "quarantine" / shard.name).exists()
    assert cli("sql", "--store", store, "SELECT count(*) FROM archs").returncode == 0


# ---------------------------------------------------------------------------------------------- a Ray already running


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_an_ingest_starts_its_own_ray_beside_a_cluster_registered_on_the_machine(tmp_path):
    """`ray start --head` on this machine and RAY_ADDRESS pointing at it: without `--ray-address` the ingest
    still starts its own embedded Ray (it used to join and crash on `num_cpus`)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import psutil

    ray_tmp = tempfile.mkdtemp(prefix="r", dir="/tmp")  # short: Ray's socket paths live under it
    port = _free_port()
    env = {**os.environ, "RAY_TMPDIR": ray_tmp, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    ray_cli = str(Path(sys.executable).with_name("ray"))
    try:
        started = subprocess.run([ray_cli, "start", "--head", "--port", str(port), "--num-cpus", "1",
                                  "--include-dashboard=false", f"--temp-dir={ray_tmp}", "--disable-usage-stats"],
                                 env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert started.returncode == 0, started.stderr
        env["RAY_ADDRESS"] = (Path(ray_tmp) / "ray_current_cluster").read_text().strip()
        r = subprocess.run([sys.executable, "-m", "zcpipe.cli", "ingest", "--space", "nb201", "--limit", "1",
                            "--workers", "1", "--data", "synthetic", "--batch-size", "8", "--proxies", "synflow",
                            "--store", str(tmp_path / "s"), "--no-progress"],
                           env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
        assert "1 done, 0 skipped (already committed), 0 failed" in r.stderr
    finally:  # stop that cluster alone (never `ray stop`, which stops every Ray on the machine)
        for p in psutil.process_iter(["cmdline"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if ray_tmp in cmd or f":{port}" in cmd:
                for q in [p, *p.children(recursive=True)]:
                    try:
                        q.kill()
                    except psutil.NoSuchProcess:
                        pass
        shutil.rmtree(ray_tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- labels

A0 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
A1 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
A2 = "|none~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


def _labels(store):
    return Catalog(store).query("SELECT arch, label, value FROM labels ORDER BY arch, label").to_pylist()


def test_nan_and_inf_labels_are_skipped_and_counted(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text(f"arch,cifar10_valid\n{A0},nan\n{A1},inf\n{A2},71.5\n")
    r = cli("labels", "import", "--store", tmp_path / "s", "--space", "nb201", path)
    assert r.returncode == 0, r.stderr
    assert "imported 1 label rows" in r.stderr and "skipped 2 NaN/infinite values" in r.stderr
    assert _labels(tmp_path / "s") == [{"arch": A2, "label": "cifar10_valid", "value": 71.5}]


def test_a_file_of_nan_labels_only_is_refused(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_text(f'{{"arch": "{A0}", "cifar10_valid": NaN}}\n')
    line = _refused(cli("labels", "import", "--store", tmp_path / "s", "--space", "nb201", path))
    assert "holds no labels for nb201 (1 values were NaN or infinite)" in line


def test_a_non_numeric_label_fails_the_import_naming_its_line(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text(f"arch,cifar10_valid\n{A0},90\n{A1},ninety\n")
    line = _refused(cli("labels", "import", "--store", tmp_path / "s", "--space", "nb201", path))
    assert "l.csv:3: column 'cifar10_valid' holds 'ninety', which is not a number" in line
    assert not (tmp_path / "s").exists() or not Catalog(tmp_path / "s").exists()


def test_a_byte_order_mark_is_not_part_of_a_column_name(tmp_path):
    path = tmp_path / "l.csv"
    path.write_bytes(b"\xef\xbb\xbfarch,cifar10_valid\n" + f"{A0},90\n".encode())
    assert cli("labels", "import", "--store", tmp_path / "s", "--space", "nb201", path).returncode == 0
    assert _labels(tmp_path / "s") == [{"arch": A0, "label": "cifar10_valid", "value": 90.0}]


def test_repeated_archs_become_one_row_with_their_mean(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text(f"arch,cifar10_valid\n{A0},90\n{A1},80\n{A0},92\n{A0},94\n")
    r = cli("labels", "import", "--store", tmp_path / "s", "--space", "nb201", path)
    assert r.returncode == 0 and "merged 3 rows repeating 1 architectures into their mean" in r.stderr
    assert _labels(tmp_path / "s") == [{"arch": A1, "label": "cifar10_valid", "value": 80.0},
                                       {"arch": A0, "label": "cifar10_valid", "value": 92.0}]  # fmt: skip
    commit_arch_rows(tmp_path / "s", "nb201", [{"space": "nb201", "arch": a, "config_hash": "c", "shard_id": "s",
                                                "status": "ok"} for a in (A0, A1)], [])  # fmt: skip
    n = Catalog(tmp_path / "s").query("SELECT count(*) AS n FROM archs_labeled WHERE arch = ?".replace("?", f"'{A0}'"))
    assert n.to_pylist() == [{"n": 1}]


def test_a_binary_labels_file_is_refused_in_one_line(tmp_path):
    path = tmp_path / "l.csv"
    path.write_bytes(bytes(range(256)) * 4)
    line = _refused(cli("labels", "import", "--store", tmp_path / "s", "--space", "nb201", path))
    assert "is not UTF-8 text" in line and "--format" in line


def test_a_new_shard_reads_a_lost_chunk_as_nan_not_zero(tmp_path):
    """The honest fill: even a reader that skipped verification would see NaN, never a plausible 0.0."""
    import numpy as np
    import zarr

    from zcpipe.store import TensorBlock, write_staged_shard

    block = TensorBlock(["a"], ["snip"], ["x"], np.full((1, 1, 1), 3.0), np.ones((1, 1), bool))
    m = write_staged_shard(tmp_path, shard_id="s", space="nb201", run_id="r", config_hash="c",
                           arch_rows=[], layer_rows=[], proxy_names=[], tensors=block)  # fmt: skip
    staged = tmp_path / "staging" / m.shard_id / "tensors.zarr"
    (staged / "values" / "c" / "0" / "0" / "0").unlink()
    assert np.isnan(zarr.open_group(str(staged), mode="r")["values"][:]).all()


# ---------------------------------------------------------------------------------------------- the catalog is an index


def _snapshot(store):
    cat = Catalog(store)
    return {
        "archs": cat.query("SELECT count(*) AS n FROM archs").to_pylist(),
        "labels": cat.query("SELECT label, count(*) n, sum(value) v FROM labels GROUP BY 1 ORDER BY 1").to_pylist(),
        "models": cat.query("SELECT name, predictor, train_size, kendall, hparams FROM models ORDER BY 1").to_pylist(),
        "predictions": cat.query("SELECT model, count(*) n, sum(score) s FROM predictions GROUP BY 1").to_pylist(),
        "graphs": cat.query("SELECT count(*) AS n FROM graphs").to_pylist(),
    }


@pytest.fixture(scope="module")
def trained_reference(labeled_reference, tmp_path_factory):
    """The labeled 3,000-cell store with a trained model and its predictions: made once."""
    store = tmp_path_factory.mktemp("trained") / "store"
    shutil.copytree(labeled_reference, store)
    args = ["--store", store]
    r = cli("train", *args, "--space", "nb201", "--predictor", "proxy:snip", "--target", "cifar10_valid",
            "--train-size", "100", "--name", "m1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert cli("predict", *args, "--model", "m1").returncode == 0
    return store


@pytest.fixture
def store_with_everything(trained_reference, tmp_path):
    """A copy of the 3,000-cell store with labels, a trained model and its predictions."""
    store = tmp_path / "store"
    shutil.copytree(trained_reference, store)
    before = _snapshot(store)
    assert before["models"] and before["predictions"] and before["labels"]
    return store, before


def test_a_deleted_catalog_comes_back_whole_from_reconcile(store_with_everything):
    store, before = store_with_everything
    (store / "catalog.duckdb").unlink()
    r = cli("store", "reconcile", "--store", store)
    assert r.returncode == 0, r.stderr
    assert "label rows, 1 models, 1 predictions from the store's records" in r.stderr
    assert _snapshot(store) == before
    again = cli("store", "reconcile", "--store", store)  # a healthy catalog: nothing to restore, nothing doubled
    assert "restored" not in again.stderr and _snapshot(store) == before


def test_a_damaged_catalog_says_rebuild_and_rebuild_restores_it(store_with_everything):
    store, before = store_with_everything
    (store / "catalog.duckdb").write_bytes(b"garbage" * 1000)
    for args in (["sql", "SELECT 1"],
                 ["train", "--space", "nb201", "--predictor", "proxy:snip", "--target", "cifar10_valid",
                  "--train-size", "100"],
                 ["store", "reconcile"]):  # fmt: skip
        line = _refused(cli(*args, "--store", store))
        assert "is damaged" in line and f"`zcpipe store reconcile --rebuild --store {store}`" in line, line
        assert "locked by another process" not in line
    r = cli("store", "reconcile", "--rebuild", "--store", store)
    assert r.returncode == 0, r.stderr
    assert "set the old catalog aside as" in r.stderr
    assert _snapshot(store) == before
    assert len(list(store.glob("catalog.damaged-*.duckdb"))) == 1


def test_a_forged_record_is_skipped_not_run(store_with_everything):
    store, before = store_with_everything
    forged = '{"name": "x", "name) VALUES (1); DROP TABLE labels_t; --": 1}'
    (store / "models" / "m1" / "record.json").write_text(forged)
    (store / "catalog.duckdb").unlink()
    r = cli("store", "reconcile", "--store", store)
    assert r.returncode == 0 and "1 records unreadable" in r.stderr
    after = _snapshot(store)
    assert after["labels"] == before["labels"] and after["models"] == []


# ---------------------------------------------------------------------------------------------- small things


@pytest.fixture
def read_only_store(damaged_store, tmp_path):
    """The 3,000-cell store with labels and a model (not yet scored), seen through a read-only bind mount."""
    import subprocess

    store, _ = damaged_store
    r = cli("train", "--store", store, "--space", "nb201", "--predictor", "proxy:snip", "--target", "cifar10_valid",
            "--train-size", "100", "--name", "m1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    mount = tmp_path / "ro"
    mount.mkdir()
    bind = subprocess.run(["mount", "--bind", str(store), str(mount)], capture_output=True, text=True)
    if bind.returncode != 0:
        pytest.skip(f"a read-only mount needs root here ({bind.stderr.strip()})")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], check=True, capture_output=True)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_a_read_only_store_reads_and_says_read_only_where_a_command_writes(read_only_store, tmp_path):
    store = read_only_store
    r = cli("search", "--store", store, "--top-k", "3", "--format", "json")  # the newest model: m1
    assert r.returncode == 0, r.stderr  # a search writes nothing
    assert len(json.loads(r.stdout)) == 3
    assert cli("evaluate", "--store", store).returncode == 0
    assert cli("sql", "--store", store, "SELECT count(*) FROM archs").returncode == 0
    labels = tmp_path / "l.csv"
    labels.write_text(f"arch,cifar10_valid\n{A0},90\n")
    for args in (["labels", "import", "--space", "nb201", labels], ["predict", "--model", "m1"],
                 ["store", "reconcile"],
                 ["train", "--space", "nb201", "--predictor", "proxy:snip", "--target", "cifar10_valid",
                  "--train-size", "100", "--name", "m2"],
                 ["ingest", "--space", "nb201", "--limit", "1", "--data", "synthetic"]):  # fmt: skip
        line = _refused(cli(*args, "--store", store))
        assert "cannot be written" in line or "read-only file system" in line, (args, line)
        assert "locked by another process" not in line


def test_a_store_that_is_a_file_is_refused_in_one_line(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    for args in (["sql", "SELECT 1"], ["ingest", "--space", "nb201", "--limit", "1", "--data", "synthetic"],
                 ["store", "reconcile"]):  # fmt: skip
        assert "is a file, not a folder" in _refused(cli(*args, "--store", path))


def test_bad_ingest_input_creates_nothing(tmp_path):
    bad = tmp_path / "archs.txt"
    bad.write_text("junk\n")
    for args in (["--archs", bad, "--data", "synthetic"], ["--limit", "1", "--data", "cifar10", "--data-root",
                                                            tmp_path / "nowhere"]):  # fmt: skip
        _refused(cli("ingest", "--space", "nb201", "--store", tmp_path / "s", *args))
        assert not (tmp_path / "s").exists()


def test_nested_results_print_as_json_in_csv(store):
    r = cli("sql", "--store", store, "--format", "csv", "SELECT [1, 2] AS l, {'a': 1} AS s, [[0.5]] AS ll")
    assert r.returncode == 0 and r.stdout == 'l,s,ll\n"[1, 2]","{""a"": 1}",[[0.5]]\n'


@pytest.fixture
def two_proxy_store(tmp_path):
    """30 labelled NB201 cells whose statistics hold only synflow and snip, node-wise on the real slot axis."""
    import numpy as np

    from zcpipe.store import TensorBlock, write_staged_shard
    from zcpipe.workers.spaces import get_space

    space = get_space("nb201")
    archs = space.sample(30, 0)
    slots = space.slots()
    rng = np.random.default_rng(0)
    block = TensorBlock(archs, ["synflow", "snip"], slots, rng.random((30, 2, len(slots))) + 0.1,
                        np.ones((30, len(slots)), bool))  # fmt: skip
    rows = [{"space": "nb201", "arch": a, "config_hash": "c2", "run_id": "r", "shard_id": "s2", "status": "ok",
             "synflow": float(block.values[i, 0].sum()), "snip": float(block.values[i, 1].sum())}
            for i, a in enumerate(archs)]  # fmt: skip
    store = tmp_path / "s"
    with Catalog(store).writer() as w:
        w.reconcile()
        m = write_staged_shard(store, shard_id="s2", space="nb201", run_id="r", config_hash="c2", arch_rows=rows,
                               layer_rows=[], proxy_names=["synflow", "snip"], tensors=block)  # fmt: skip
        w.commit(m)
    import_labels(str(store), "nb201", nb201_labels_for(archs, tmp_path))
    return store


def test_parzc_defaults_to_the_proxies_the_store_holds(two_proxy_store):
    r = cli("train", "--store", two_proxy_store, "--space", "nb201", "--predictor", "parzc", "--target",
            "cifar10_valid", "--train-size", "20", "--epochs", "2", "--name", "p")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert re.search(r"wall s: load [0-9.]+, fit [0-9.]+, evaluate [0-9.]+, save [0-9.]+", r.stderr), r.stderr
    (hp,) = Catalog(two_proxy_store).query("SELECT hparams FROM models").column("hparams").to_pylist()
    assert '"proxies": "snip,synflow"' in hp
    r = cli("train", "--store", two_proxy_store, "--space", "nb201", "--predictor", "parzc", "--target",
            "cifar10_valid", "--train-size", "20", "--hp", "proxies=fisher")  # fmt: skip
    assert "node-wise proxies fisher are not in this configuration's tensors" in _refused(r)


def test_a_train_size_that_leaves_one_test_cell_is_refused(two_proxy_store):
    r = cli("train", "--store", two_proxy_store, "--space", "nb201", "--predictor", "parzc", "--target",
            "cifar10_valid", "--train-size", "29")  # fmt: skip
    assert "--train-size 29 leaves one test cell: only 30 cells" in _refused(r)
    assert "use at most 28" in r.stderr


def test_a_misspelled_name_gets_duckdbs_suggestion(store):
    assert '(Candidate bindings: "synflow"' in _refused(cli("sql", "--store", store, "SELECT synflw FROM archs"))
    assert '(Did you mean "archs"?)' in _refused(cli("sql", "--store", store, "SELECT * FROM archz"))


def test_a_run_that_computed_nothing_prints_no_nan():
    from zcpipe.pipeline.ingest.driver import IngestSummary

    line = IngestSummary("r", "c", 6, 0, 6, 0, 1.5, 0.0).line()
    assert "nan" not in line and "0 done, 6 skipped" in line


def test_the_docs_genotypes_file_parses_as_nb301():
    from tests.conftest import ROOT
    from zcpipe.workers.spaces import get_space

    space = get_space("nb301")
    lines = (ROOT / "docs" / "examples" / "genotypes.txt").read_text().split()
    assert len(lines) == 5 and all(space.parse(t) == t for t in lines)


def test_a_store_from_before_the_records_gets_them_from_its_catalog(store_with_everything):
    """A store written before labels and models were kept as files: reconcile writes them from the catalog,
    so the catalog can be rebuilt from then on."""
    store, before = store_with_everything
    for folder in ("labels", "graphs", "predictions"):
        shutil.rmtree(store / folder)
    (store / "models" / "m1" / "record.json").unlink()
    r = cli("store", "reconcile", "--store", store)
    assert r.returncode == 0, r.stderr
    assert (store / "models" / "m1" / "record.json").exists() and any((store / "labels").rglob("*.parquet"))
    (store / "catalog.duckdb").unlink()
    assert cli("store", "reconcile", "--store", store).returncode == 0
    assert _snapshot(store) == before
