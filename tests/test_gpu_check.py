"""bench/gpu_check.py, the one-command device check, kept runnable: its CPU dry run, and its import of
the stage folders from a checkout where zcpipe is not installed (as on the lent GPU machine)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT
from zcpipe.settings import FAILPOINTS_ENV

SCRIPT = ROOT / "bench" / "gpu_check.py"


def test_it_imports_the_workers_from_the_checkout_without_an_install_or_ray():
    code = f"""
import runpy, sys
# Hide the editable install, as on a machine where zcpipe was never pip-installed.
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path[:] = [p for p in sys.path if "__editable__" not in p]
sys.argv = ["gpu_check.py", "--help"]
try:
    runpy.run_path({str(SCRIPT)!r}, run_name="__main__")
except SystemExit:
    pass
import zcpipe.workers.engine as engine
print(engine.__file__)
print(sorted(m for m in ("ray", "duckdb", "zarr", "polars") if m in sys.modules))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/")
    assert r.returncode == 0, r.stderr[-2000:]
    path, loaded = r.stdout.strip().splitlines()[-2:]
    assert path == str(ROOT / "workers" / "engine.py")
    assert loaded == "[]"


@pytest.mark.slow
def test_the_cpu_dry_run_meets_its_targets_and_writes_its_table(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)  # fmt: skip
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    table = (tmp_path / "gpu_check.md").read_text()
    assert "verdict: all targets met" in table
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    from zcpipe.workers.proxies import all_proxies

    assert set(report["values"]["whole"]["shared"]) == set(report["ranking"]) == set(all_proxies())
    assert report["split"]["micro_batches"] > 1
    assert {"K=1", "K=2"} <= set(report["concurrency"]) and (tmp_path / "profile.txt").stat().st_size > 0
    assert report["concurrency"]["K=2, batched"]["arch_batch"]  # each process chose its B from its share
    assert not report["errors"]
    # The batched path ran at each B and its operators were counted. Not compared here: on the CPU a
    # stacked convolution runs per architecture, so a pass of two dispatches about what the single engine
    # does; with the GPU's grouped kernels the reduction is tested in tests/test_batched.py.
    batched = report["batched"]
    assert report["zero_cost_nas_way"]["ratio"] > 0  # the side-by-side row ran
    for space in ("nb201", "nds-darts"):  # the dry run's DARTS network is the smallest nds-darts
        for b in (1, 2):
            row = batched[f"{space} B={b}"]
            assert row["kernels_per_arch"] > 0 and row["failed"] == 0 and row["archs_per_s"] > 0
    # The other convolution mode ran too (grouped, here on the CPU; one per architecture on a GPU).
    assert batched["nb201 B=2, grouped convolutions"]["failed"] == 0
    assert report["parts_not_run"] == []
    # Float64 as the third reference: on the CPU the "device" is the CPU, so every proxy passes.
    rows = report["float64"]
    assert set(rows) == set(all_proxies()) and all(r["passes_by_side"]["device"] for r in rows.values())
    # The batched side is measured for every proxy; on 2 cells it is not judged here: a signed sum's
    # largest difference over 2 cells is too small a sample (plain: 3.6e-5 against the CPU's 7.9e-6;
    # over 16 cells the batched path is as far as the single engine, bench/README.md).
    assert all(math.isfinite(r["batched"]["max_rel"]) for r in rows.values())


def test_the_host_part_of_the_batched_bench_runs_on_the_given_device():
    # What a session lent a GPU runs after the check (`--parts host --device cuda`): here its CPU dry run,
    # so that the part cannot rot; the table has the single engine and each size, with the build added.
    script = ROOT / "bench" / "batched.py"
    r = subprocess.run([sys.executable, str(script), "--parts", "host", "--host-sizes", "1,2", "--device", "cpu"],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)  # fmt: skip
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    rows = {line.split("|")[1].strip(): line.split("|")[2:4] for line in r.stdout.splitlines() if line.count("|") == 6}
    assert {"single engine", "batched B=1", "batched B=2"} <= set(rows)
    for engine_ms, built_ms in rows.values():
        if engine_ms.strip().replace(".", "").isdigit():
            assert 0 < float(engine_ms) < float(built_ms)  # the build adds to the engine's time


def test_a_check_stopped_part_way_leaves_the_figures_of_the_parts_it_finished(tmp_path):
    # The lent GPU's command has a time limit: what the check finished before it is stopped must come back.
    # A failpoint holds it before the `speed` part, where the test kills it as the limit would.
    allowed = tmp_path / "parts-allowed"
    allowed.write_text("values\n")
    out = tmp_path / "out"
    env = {**os.environ, FAILPOINTS_ENV: f"gpu-check={allowed}"}
    args = [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(out), "--parts", "values,speed"]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    report_file = out / "gpu_check.json"
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if report_file.exists() and "values" in json.loads(report_file.read_text())["part_seconds"]:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # still held before `speed`
    finally:
        proc.kill()
        proc.wait(timeout=30)
    report = json.loads(report_file.read_text())
    assert report["parts_not_run"] == ["speed"] and set(report["part_seconds"]) == {"values"}
    assert report["values"]["whole"]["shared"] and "speed" not in report
    assert "verdict: MISSED parts not run: speed" in (out / "gpu_check.md").read_text()
    assert not list(out.glob(".*.tmp"))  # each file replaced whole


def test_a_check_given_a_time_to_stop_starts_no_part_after_it_and_says_which_it_did_not_run(tmp_path):
    args = ["--device", "cpu", "--quick", "--out", str(tmp_path), "--parts", "values,speed", "--stop-after-s", "0"]
    r = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 1, (r.stdout + r.stderr)[-2000:]  # a part not run is a missed target
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["parts_not_run"] == ["values", "speed"] and report["part_seconds"] == {}
    assert "not starting values, speed" in r.stderr
