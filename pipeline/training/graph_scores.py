"""Cross-space graph models' zero-cost input: each cell's graph with its whole-network proxies, read from
its own space's statistics. Every space has a configuration of its own (its network, its images), so the
values of two spaces are never compared: a predictor reads them as standings within their space."""

from __future__ import annotations

import numpy as np

from zcpipe.store.graph_reader import GraphSet, load_graph_set
from zcpipe.store.tensor_reader import TrainingDataError, configs_by_space, load_training_set


def _hashes_by_space(store: str, spaces: list[str], config_hash: str | None) -> dict[str, str | None]:
    """Per space, the configurations named for it (comma-separated, as `load_training_set` takes them), or
    None: the space's only one. A saved model names its training spaces' hashes, which the space it is
    evaluated on ignores; a hash of no space in the store is a typo, and an error."""
    named = [h.strip() for h in config_hash.split(",")] if config_hash else []
    held = configs_by_space(store)
    anywhere = {h for hs in held.values() for h in hs}
    unknown = [h for h in named if h not in anywhere]
    if unknown:
        raise TrainingDataError(
            f"config_hash {', '.join(unknown)}: no statistics of {', '.join(spaces)} in {store} under it; "
            f"it has: {'; '.join(f'{s} ' + ', '.join(held.get(s, [])) for s in spaces)}"
        )
    return {s: ",".join(h for h in named if h in held.get(s, [])) or None for s in spaces}


def load_scored_graphs(
    store: str, spaces: list[str], target: str | None, config_hash: str | None, dataset: str | None = None
) -> GraphSet:
    """The graphs of `spaces`' cells that have statistics (and a `target` label, where named), with the
    whole-network proxies every one of those spaces holds as `arch_stats` (NaN where NULL). `config_hash`
    is the comma-joined configurations read, one or more per space."""
    hashes = _hashes_by_space(store, spaces, config_hash)
    parts = {s: load_training_set(store, s, target=target, config_hash=hashes[s], dataset=dataset) for s in spaces}
    names = [n for n in parts[spaces[0]].scalar_names if all(n in p.scalar_names for p in parts.values())]
    if not names:
        raise TrainingDataError(
            f"{', '.join(spaces)} share no whole-network proxy in {store}: ingest the same proxies for each"
        )
    graphs = load_graph_set(store, spaces, target=target, archs={s: p.archs for s, p in parts.items()})
    where = {(s, a): k for k, (s, a) in enumerate(zip(graphs.spaces, graphs.archs, strict=True))}
    missing = sorted((s, a) for s, p in parts.items() for a in p.archs if (s, a) not in where)
    if missing:
        raise TrainingDataError(
            f"{len(missing)} architectures have statistics but no graph in {store} (e.g. {' '.join(missing[0])}); "
            "a label import records the graph of every labeled architecture"
        )
    values = np.empty((len(graphs), len(names)))
    for s, p in parts.items():  # each space's rows and proxy columns in one assignment
        values[[where[(s, a)] for a in p.archs]] = p.scalars[:, [p.scalar_names.index(n) for n in names]]
    return graphs.with_stats(",".join(p.config_hash for p in parts.values()), None, [], values, names)
