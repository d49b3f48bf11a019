"""The CLI contract: one-line errors that say what to do, and clean CSV on stdout."""

import os
import subprocess

import pytest

from tests.conftest import ROOT
from tests.helpers import ZCPIPE


def _run(*args, timeout=120):
    # No CUDA device for these processes, on a GPU host too: the `--gpus 1` case is about a machine without one.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([*ZCPIPE, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--space", "nope", "--limit", "2"],
            "unknown space 'nope' (--space); choose one of: nb101, nb201, nb301, nds-amoeba, nds-darts, nds-enas, "
            "nds-nasnet, nds-pnas",
        ),
        (["--space", "nb201", "--limit", "2", "--proxies", "synflow,magic"], "unknown proxy 'magic' (--proxies)"),
        (["--space", "nb201", "--limit", "2", "--actors-per-gpu", "2"], "--actors-per-gpu shares GPUs among actors"),
        (["--space", "nb201"], "choose exactly one of --limit N, --archs FILE or --all"),
        (
            ["--space", "nb201", "--limit", "2", "--data", "cifar10", "--data-root", "no/such/dir"],
            "CIFAR-10 not found at no/such/dir",
        ),
        (["--space", "nb201", "--limit", "2", "--data", "imagenet"], "unknown dataset 'imagenet' (--data)"),
        (["--space", "nb201", "--limit", "2", "--gpus", "1"], "torch sees no CUDA device"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, args, message):
    r = _run("ingest", "--store", str(tmp_path), *args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr


def test_malformed_arch_file_names_the_line(tmp_path):
    f = tmp_path / "archs.txt"
    f.write_text("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|\n\n|conv9~0|+|x|\n")
    r = _run("ingest", "--store", str(tmp_path), "--space", "nb201", "--archs", str(f))
    assert r.returncode == 2
    assert "archs.txt:3: malformed NB201 arch" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_sql_on_a_missing_store_and_bad_sql(tmp_path):
    r = _run("sql", "--store", str(tmp_path / "none"), "SELECT 1")
    assert r.returncode == 2 and "run `zcpipe ingest" in r.stderr
    from zcpipe.store import Catalog

    with Catalog(tmp_path).writer() as w:
        w.reconcile()
    r = _run("sql", "--store", str(tmp_path), "--format", "csv", "SELECT count(*) AS n FROM archs")
    assert r.returncode == 0 and r.stdout == "n\n0\n"
    r = _run("sql", "--store", str(tmp_path), "SELEC nonsense")
    assert r.returncode == 2 and r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1


def test_a_store_that_cannot_be_reached_is_one_line_that_says_what_to_check(tmp_path, monkeypatch):
    import s3fs

    from tests.helpers import cli

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # nothing listens there
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("ZCPIPE_CACHE_DIR", str(tmp_path))
    s3fs.S3FileSystem.clear_instance_cache()  # a cached client would still point at another endpoint
    try:
        r = cli("sql", "--store", "s3://zcpipe-test/store", "SELECT 1")
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: Could not connect to the endpoint URL") and "check --store, AWS_ENDPOINT_URL" in line


@pytest.mark.slow
def test_ingest_then_sql_csv_contract(tmp_path):
    from tests.helpers import ingest_args

    r = subprocess.run(
        ingest_args(tmp_path, 3, "--workers", "2", "--proxies", "synflow,snip"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "3 done, 0 skipped" in r.stderr
    r = _run("sql", "--store", str(tmp_path), "--format", "csv", "SELECT count(*) AS n FROM archs")
    assert r.stdout == "n\n3\n"
    r = _run("sql", "--store", str(tmp_path), "--format", "json", "SELECT arch, null_reasons FROM archs LIMIT 1")
    assert r.returncode == 0 and r.stdout.startswith('[{"arch": "|')


def test_zcpipe_errors_become_one_line_and_bugs_keep_their_traceback():
    import typer

    from zcpipe.cli.common import handled
    from zcpipe.pipeline.errors import ConfigError

    with pytest.raises(typer.Exit) as e, handled("/tmp/s"):
        raise ConfigError("`batch_size` must be at least 1", options=["batch_size"])
    assert e.value.exit_code == 2
    with pytest.raises(KeyError), handled("/tmp/s"):  # an internal bug is not a user error
        raise KeyError("slot")
    with pytest.raises(FileNotFoundError), handled("/tmp/s"):  # nor is any missing file
        raise FileNotFoundError("/tmp/s/catalog.duckdb")


def test_library_messages_name_settings_and_the_cli_renders_their_flags():
    from zcpipe.cli.common import describe
    from zcpipe.pipeline.errors import ConfigError

    e = ConfigError("choose exactly one of `limit` N, `archs_file` FILE or `all_archs`",
                    options=["limit", "archs_file", "all_archs"])  # fmt: skip
    assert describe(e) == "choose exactly one of --limit N, --archs FILE or --all"
    assert describe(ConfigError("`a` and `b`", options=["b"])) == "`a` and --b"  # only the listed fields


def test_the_ingest_options_are_the_configs_fields_with_its_defaults_and_help():
    import dataclasses

    import typer.main

    from zcpipe.cli import app
    from zcpipe.pipeline import IngestConfig

    command = typer.main.get_command(app).commands["ingest"]
    options = {p.name: p for p in command.params if p.param_type_name == "option"}
    fields = {f.name: f for f in dataclasses.fields(IngestConfig)}
    assert set(options) == {*fields, "progress"}  # nothing hand-copied, nothing left out
    for name, f in fields.items():
        assert options[name].help == f.metadata["help"]
        if f.default is not dataclasses.MISSING and not isinstance(f.default, tuple):
            assert options[name].default == f.default, name
    assert options["proxies"].default == ",".join(IngestConfig.proxies)
    assert options["archs_file"].opts == ["--archs"] and options["compact"].secondary_opts == ["--no-compact"]
    assert options["space"].required
