"""The worker's garbage-collector setting (workers/collector.py): fewer collections while networks are
built, and reference cycles still collected. In a fresh interpreter: the setting is process-wide, and
this test process has made workers already."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

CODE = """
import gc, json, weakref
import numpy as np
from zcpipe.workers.spaces import BuildOptions, get_space
from zcpipe.workers.worker import ProxyWorker, WorkerConfig

space = get_space("nb201", channels=4, cells_per_stage=1)
cells = space.sample(16, 0)

def collections_while_building():
    before = gc.get_stats()[0]["collections"]
    nets = [space.build(c, BuildOptions()) for c in cells]
    return gc.get_stats()[0]["collections"] - before

default = collections_while_building()
images, labels = np.zeros((2, 3, 8, 8), np.float32), np.zeros(2, np.int64)
ProxyWorker(WorkerConfig(space="nb201", proxies=("snip",)), images, labels, 10)
tuned = collections_while_building()

class Node:
    pass

a, b = Node(), Node()
a.other, b.other = b, a
cycle = weakref.ref(a)
del a, b
kept = [[i] for i in range(3 * gc.get_threshold()[0])]  # allocations enough for a collection
print(json.dumps({"default": default, "tuned": tuned, "cycle_collected": cycle() is None}))
"""


def test_a_worker_collects_garbage_less_often_while_it_builds_networks_and_still_collects_cycles():
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["default"] >= 10 and out["tuned"] * 5 <= out["default"], out
    assert out["cycle_collected"], out
