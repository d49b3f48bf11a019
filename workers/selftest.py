"""A device self-test for images and new nodes: every proxy of one NB201 cell on the device and on the
CPU, compared against the device check's targets. Needs nothing but torch and this package.

    python -m zcpipe.workers.selftest [--device cuda|cpu]

Prints one line per proxy and exits 1 if a value misses its tolerance (whole-network, relative:
1e-4; grasp and nwot 1e-3) or is NULL on one side only; the CUDA image runs it as its smoke test.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys

import numpy as np
import torch

from zcpipe.workers.data import to_batch
from zcpipe.workers.device import configure_precision
from zcpipe.workers.engine import ProxyEngine
from zcpipe.workers.proxies import all_proxies, get_proxies
from zcpipe.workers.spaces import BuildOptions, get_space

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
TOLERANCE = {"grasp": 1e-3, "nwot": 1e-3}


def check(device: str, batch_size: int = 32) -> list[str]:
    """Lines `proxy cpu device rel ok|MISS`; raises nothing, the caller reads the verdicts."""
    configure_precision(device)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((batch_size, 3, 32, 32), dtype=np.float32)
    labels = rng.integers(0, 10, batch_size).astype(np.int64)
    torch.manual_seed(0)
    model = get_space("nb201").build(CELL, BuildOptions())
    engine = ProxyEngine(get_proxies(sorted(all_proxies())))
    cpu = engine.compute(copy.deepcopy(model), to_batch(images, labels, 10, "cpu"), 1)
    dev = engine.compute(model.to(device), to_batch(images, labels, 10, device), 1)
    lines = []
    for name in sorted(all_proxies()):
        a, b = cpu.values.get(name), dev.values.get(name)
        if a is None or b is None:
            ok, r = a is None and b is None, math.nan
        else:
            r = abs(a - b) / max(abs(a), 1e-300) if a != b else 0.0
            ok = r <= TOLERANCE.get(name, 1e-4)
        lines.append(f"{name:10s} cpu {a!s:>24} {device} {b!s:>24} rel {r:.1e} {'ok' if ok else 'MISS'}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description="every proxy of one NB201 cell: the device against the CPU")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"error: --device {args.device} but torch {torch.__version__} sees no CUDA device "
              "(run the container with --gpus all, or pass --device cpu)", file=sys.stderr)  # fmt: skip
        return 2
    lines = check(args.device)
    print("\n".join(lines))
    missed = [line.split()[0] for line in lines if line.endswith("MISS")]
    print(f"selftest {args.device}: " + ("all proxies agree with the CPU" if not missed else f"MISS {missed}"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
