"""An ingest never waits forever: a plan the cluster cannot place is a one-line error within seconds,
and a device fault ends the worker, whose chunk Ray reruns on a fresh process (real Ray throughout)."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.conftest import ROOT
from tests.helpers import cli, ingest_args
from zcpipe.store import Catalog

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_one_fake_gpu():
    import ray

    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.parametrize(
    "extra,placeable",
    [
        (["--gpus", "2", "--device", "cpu"], 1),  # more GPUs than the cluster has
        (["--gpus", "1", "--actors-per-gpu", "4", "--device", "cpu"], 2),  # 4 actors of 1 CPU on 2 CPUs
    ],
)
def test_a_plan_the_cluster_cannot_place_is_one_line_at_once(tmp_path, ray_one_fake_gpu, extra, placeable):
    t0 = time.monotonic()
    r = cli(*ingest_args(tmp_path, 4, *extra)[3:])  # the same arguments, in this process's Ray
    assert time.monotonic() - t0 < 60
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: the plan needs") and f"can place {placeable}" in line, line
    assert "lower --gpus, --actors-per-gpu or --workers" in line


def test_gpus_on_a_machine_without_them_stop_at_once_not_after_an_idle_wait(tmp_path):
    # The reported hang: an embedded Ray on this GPU-less machine, actors asking for GPUs.
    r = subprocess.run(ingest_args(tmp_path, 2, "--gpus", "2", "--device", "cpu"), cwd=ROOT,
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2, r.stderr[-2000:]
    assert "0 GPUs) can place 0" in r.stderr.strip().splitlines()[-1]


def test_a_device_fault_restarts_the_worker_and_loses_nothing(tmp_path):
    marker = tmp_path / "fault-fired"
    env = {**os.environ, "ZCPIPE_FAILPOINTS": f"device-fault={marker}"}
    store = tmp_path / "store"
    args = ingest_args(store, 3, "--proxies", "synflow,snip", "--chunk-size", "1")
    r = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert marker.exists(), "the failpoint did not fire"
    assert "3 done, 0 skipped (already committed), 0 failed" in r.stderr
    rows = Catalog(store).query("SELECT arch, status FROM archs").to_pylist()
    assert len(rows) == len({r["arch"] for r in rows}) == 3
    assert {r["status"] for r in rows} == {"ok"}  # no architecture was blamed for the device
