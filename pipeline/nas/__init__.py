"""NAS loops that use the store's proxies: random search, regularised evolution, local search and BANANAS,
on the stored cells of a space, with zero-cost features, warm starts and ZC-guided moves.

    pool.py        the cells a loop may query, their labels and features, the neighbourhood
    algorithms.py  the loops (ask/tell over a Pool, a query budget)
    loop.py        `run_nas`: seeds, resumable history in the store
    summary.py     mean ± standard error over seeds: best found, regret, queries to the top
"""

from __future__ import annotations

from zcpipe.pipeline.nas.loop import NasConfig, NasResult, run_nas

__all__ = ["NasConfig", "NasResult", "run_nas"]
