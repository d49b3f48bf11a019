"""Ingest on a multi-node Ray cluster (real raylets on this machine, fake GPUs) onto moto's S3, with a
worker node killed part-way: nothing is lost and nothing is duplicated."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.helpers import ingest_args
from zcpipe.store import Catalog

N_ARCHS = 8


def _committed(store: str) -> int:
    cat = Catalog(store)
    if not cat.exists():
        return 0
    return cat.query("SELECT count(*) AS n FROM archs").column("n")[0].as_py()


@pytest.mark.slow
def test_ingest_over_two_gpu_nodes_survives_a_node_kill(s3_store, tmp_path, monkeypatch):
    from ray.cluster_utils import Cluster

    # Only the chunks listed may run (workers/failpoints.py): the kill then lands while every actor holds a
    # chunk, never after the run has finished. The nodes (and so their workers) inherit this environment.
    listing = tmp_path / "chunks-allowed"
    listing.write_text("00000\n00001\n00002\n")
    monkeypatch.setenv("ZCPIPE_FAILPOINTS", f"ingest-chunk={listing}")

    # A head without CPUs (it only schedules), and two worker nodes of one CPU and one (fake) GPU each.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        doomed = cluster.add_node(num_cpus=1, num_gpus=1, memory=2 * 2**30)
        cluster.add_node(num_cpus=1, num_gpus=1, memory=2 * 2**30)
        cluster.wait_for_nodes()
        args = ingest_args(s3_store, N_ARCHS, "--proxies", "synflow", "--gpus", "2", "--device", "cpu",
                           "--ray-address", cluster.address, "--chunk-size", "1")  # fmt: skip
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while _committed(s3_store) < 3:  # both actors are under way
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "no shard committed in 5 minutes"
            time.sleep(0.5)
        time.sleep(1)
        assert _committed(s3_store) == 3 and proc.poll() is None  # held: the rest is still to do
        cluster.remove_node(doomed, allow_graceful=False)  # SIGKILL of its raylet and workers
        # the replacement node an autoscaler would bring: Ray restarts the dead actor there and retries its chunk
        cluster.add_node(num_cpus=1, num_gpus=1, memory=2 * 2**30)
        listing.write_text("\n".join(f"{i:05d}" for i in range(N_ARCHS)) + "\n")  # let every chunk run
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        # every architecture committed by this run, the lost node's chunk rerun, none failed
        assert f"{N_ARCHS} done, 0 skipped (already committed), 0 failed" in err, err

        rows = Catalog(s3_store).query("SELECT arch, node_id, device FROM archs").to_pylist()
        assert len(rows) == len({r["arch"] for r in rows}) == N_ARCHS  # every architecture exactly once
        assert len({r["node_id"] for r in rows}) >= 2  # spread over the nodes, each row says which
        assert {r["device"] for r in rows} == {"cpu"}
        again = subprocess.run(args, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0 and f"0 done, {N_ARCHS} skipped" in again.stderr, again.stderr
    finally:
        cluster.shutdown()  # stops this cluster's processes by pid: never `ray stop`
