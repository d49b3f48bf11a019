"""The report's NAS page: best validation label found against queries, one plot per target, a line per run
(mean over seeds, a band of ± one standard error), and a table of where each run ended."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from zcpipe.store import Catalog, readers


def nas_curves(catalog: Catalog, space: str) -> list[dict[str, Any]]:
    """Per NAS run of `space`: its settings and the best-so-far curve over its seeds (mean, se)."""
    out = []
    for run in readers.nas_runs(catalog, space):
        rows = readers.nas_queries(catalog, run["run_id"]).to_pylist()
        by_seed: dict[int, list[float]] = {}
        for r in rows:
            by_seed.setdefault(r["seed"], []).append(r["best_valid"])
        if not by_seed:
            continue
        n = max(len(v) for v in by_seed.values())
        curve = np.array([v + [v[-1]] * (n - len(v)) for v in by_seed.values()])
        se = curve.std(axis=0, ddof=1) / np.sqrt(len(curve)) if len(curve) > 1 else np.zeros(n)
        out.append({"run_id": run["run_id"], "target": run["target"], "algo": run["algo"],
                    "features": run["features"], "warm_start": run["warm_start"], "guided": run["guided"],
                    "seeds": len(curve), "mean": curve.mean(axis=0).tolist(), "se": se.tolist(),
                    "state": run["state"], "pool": run["pool"], "space_size": run["space_size"]})  # fmt: skip
    return out


def nas_figures(curves: list[dict[str, Any]], png) -> dict[str, bytes]:
    """One figure per target: `png(fig)` turns each into bytes."""
    import matplotlib.pyplot as plt  # after the page chose its backend

    out = {}
    for target in dict.fromkeys(c["target"] for c in curves):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        mine = [c for c in curves if c["target"] == target]
        labels = [_label(c) for c in mine]
        for c, label in zip(mine, labels, strict=True):
            q = np.arange(1, len(c["mean"]) + 1)
            mean, se = np.array(c["mean"]), np.array(c["se"])
            (line,) = ax.plot(q, mean, label=c["run_id"] if labels.count(label) > 1 else label)
            ax.fill_between(q, mean - se, mean + se, color=line.get_color(), alpha=0.2)
        # Where the runs differ: from what they reach after ~10 queries up, not the first random cells.
        low = min(c["mean"][min(9, len(c["mean"]) - 1)] for c in mine)
        high = max(c["mean"][-1] + c["se"][-1] for c in mine)
        ax.set_ylim(low - 0.05 * (high - low + 1e-9), high + 0.05 * (high - low + 1e-9))
        ax.set_xscale("log")
        ax.set_xlabel("queries (trained cells)")
        ax.set_ylabel(f"best {target} found")
        ax.legend(fontsize=7)
        out[f"nas-{target}"] = png(fig)
    return out


def nas_section(curves: list[dict[str, Any]], img, table) -> list[str]:
    """The HTML of the NAS section; `img(name)` and `table(head, rows)` come from the page."""
    parts = ['<h2 id="nas">NAS runs</h2>']
    if not curves:
        return [*parts, "<p>No NAS runs (<code>zcpipe nas</code>).</p>"]
    restricted = [c for c in curves if c["space_size"] and c["pool"] < c["space_size"]]
    if restricted:
        c = restricted[0]
        parts.append(f"<p>Restricted to the {c['pool']} stored cells of the space's {c['space_size']}.</p>")
    for target in dict.fromkeys(c["target"] for c in curves):
        parts.append(f"<h3>{html.escape(target)}</h3>")
        parts.append(img(f"nas-{target}"))
        mine = [c for c in curves if c["target"] == target]
        parts.append(table(["run", "loop", "seeds", "queries", "best found (mean)", "± se", "state"],
                           [[c["run_id"], _label(c), c["seeds"], len(c["mean"]), c["mean"][-1], c["se"][-1],
                             c["state"]] for c in mine]))  # fmt: skip
    return parts


def _label(c: dict[str, Any]) -> str:
    extra = f" [{c['features']}]" if c["algo"] == "bananas" else ""
    extra += " +warm" if c["warm_start"] else ""
    extra += " +guided" if c["guided"] else ""
    return c["algo"] + extra
