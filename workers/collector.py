"""Python's cyclic garbage collector, tuned for a process that builds networks all day.

A worker builds a few hundred torch modules for every architecture, and the batched path holds the B
networks of a pass at once. Every allocation of a container object counts towards the collector's next
pass over its youngest generation (CPython's threshold: 700), every tenth of those passes also scans the
middle generation, and a full collection scans every object the process holds: the imported modules,
torch's own, the networks being built. With those defaults the collections took half of the time of
building NB201's networks (17.3 ms per architecture with the collector, 8.8 ms without, 10.1 ms with
this tuning; `bench/batched.py --parts host`), host time a GPU actor spends while its device waits.

The tuning keeps the collector: reference cycles are still found, only less often. Nothing is frozen
(`gc.freeze`): that saved little more here, and cyclic garbage among frozen objects is never freed.
"""

from __future__ import annotations

import gc

# Allocations between two collections of the youngest generation: a few architectures' worth of modules
# instead of a fraction of one. The older generations keep their own thresholds (counted in passes of the
# younger one), so they run correspondingly less often too.
GEN0_THRESHOLD = 10_000


def collect_less_often() -> None:
    """Collect the youngest generation every `GEN0_THRESHOLD` allocations (the older generations keep
    their thresholds). The process-wide setting of whoever computes architectures; idempotent."""
    youngest, middle, oldest = gc.get_threshold()
    gc.set_threshold(max(GEN0_THRESHOLD, youngest), middle, oldest)
