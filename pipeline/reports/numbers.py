"""What `zcpipe report` shows, computed from the store through SQL (DuckDB) and scipy: one space and
one statistics configuration at a time. Rendering lives in `report_page`; this module holds numbers.

Every section may be empty: a store with one proxy, without labels or without models still gives a
Report, whose `missing` says what is absent and which command fills it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from zcpipe.pipeline.errors import ReportError
from zcpipe.pipeline.reports.nas import nas_curves
from zcpipe.pipeline.reports.tasks import across_tasks
from zcpipe.store import Catalog, readers
from zcpipe.workers.spaces import UnknownSpaceError, get_space

_MODEL_SCHEMA = {
    "name": pl.String,
    "predictor": pl.String,
    "target": pl.String,
    "train_size": pl.Int32,
    "seed": pl.Int32,
    "kendall": pl.Float64,
    "hparams": pl.String,
}
# archs columns that are not proxies.
_NOT_PROXIES = {"seconds"}


@dataclass
class Report:
    """The numbers of one space's report: correlations, proxy matrix, scatter, curves, profile, meta."""

    store: str
    space: str
    config_hash: str
    target: str | None
    proxies: list[str]
    labels: list[str]
    correlations: list[dict[str, Any]] = field(default_factory=list)  # proxy, label, n, kendall, spearman
    proxy_matrix: list[list[float]] = field(default_factory=list)  # Spearman ρ between proxies
    average_rank: list[dict[str, Any]] = field(default_factory=list)  # proxy, ranks per label, mean rank
    scatter: dict[str, Any] = field(default_factory=dict)  # name -> {"x": scores, "y": labels}
    curves: list[dict[str, Any]] = field(default_factory=list)  # predictor, train_size, mean, std, n
    profile: dict[str, Any] = field(default_factory=dict)  # proxy, slots, per op mean by slot index
    meta: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    tasks: dict[str, Any] = field(default_factory=dict)  # across tasks (reports/tasks.py), when the store has two+
    nas: list[dict[str, Any]] = field(default_factory=list)  # NAS runs' best-so-far curves (reports/nas.py)

    def data_json(self) -> str:
        return json.dumps(
            {
                k: getattr(self, k)
                for k in (
                    "space",
                    "config_hash",
                    "target",
                    "proxies",
                    "labels",
                    "correlations",
                    "proxy_matrix",
                    "average_rank",
                    "curves",
                    "meta",
                    "missing",
                    "tasks",
                    "nas",
                )
            },
            default=str,
        )


def build_report(store: str | Path, space: str | None = None, target: str | None = None) -> Report:
    """The numbers of the report on one space's largest statistics configuration (and its labels, models)."""
    catalog = Catalog(store)
    configs = [c for c in readers.configs(catalog) if space is None or c["space"] == space]
    if not configs:
        where = f" for space {space!r}" if space else ""
        raise ReportError(f"store {store} has no statistics{where}")
    best = max(configs, key=lambda c: c["archs"])  # the first of equals, in space order
    space, chash = best["space"], best["config_hash"]
    with catalog.reader() as con:
        rel = con.sql(
            "SELECT * FROM archs WHERE space = ? AND config_hash = ? AND status <> 'failed'", params=[space, chash]
        )
        numeric = [c for c, t in zip(rel.columns, rel.types, strict=True) if str(t) == "DOUBLE"]
        archs = pl.from_arrow(rel.to_arrow_table())
    label_rows = pl.from_arrow(readers.labels(catalog, space))
    # Graph-only models (TG-NAS) read no statistics: their config_hash is NULL.
    models = pl.DataFrame(
        [
            {k: m[k] for k in ("name", "predictor", "target", "train_size", "seed", "kendall", "hparams")}
            for m in readers.models(catalog, space, chash)
            if m["kendall"] is not None
        ],
        schema=_MODEL_SCHEMA,
    )
    predictions = pl.from_arrow(readers.predictions(catalog, space).select(["model", "arch", "score"]))
    runs = readers.runs(catalog, space)  # every task's runs: provenance lists them all
    proxies = [c for c in numeric if c not in _NOT_PROXIES and archs[c].is_not_null().any()]
    labels = sorted(label_rows["label"].unique().to_list()) if len(label_rows) else []
    if target is not None and target not in labels:
        raise ReportError(f"no {target!r} labels for {space}; labels there: {', '.join(labels) or 'none'}")
    target = target or (_prefer(labels) if labels else None)
    report = Report(str(store), space, chash, target, proxies, labels)
    wide = _with_labels(archs.select(["arch", *proxies]), label_rows, labels)
    _correlations(report, wide)
    _proxy_matrix(report, wide)
    _scatter(report, wide, predictions, models)
    _curves(report, models)
    report.profile = _profile(catalog, space, chash, proxies)
    report.meta = _meta(archs, runs, chash)
    report.tasks = across_tasks(catalog)
    report.nas = nas_curves(catalog, space)
    return report


def _prefer(labels: list[str]) -> str:
    for name in ("cifar10_valid", "cifar10_test"):
        if name in labels:
            return name
    return labels[0]


def _with_labels(archs: pl.DataFrame, label_rows: pl.DataFrame, labels: list[str]) -> pl.DataFrame:
    if not labels:
        return archs
    wide = label_rows.pivot(on="label", index="arch", values="value")
    return archs.join(wide, on="arch", how="left")


def _pair(wide: pl.DataFrame, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
    x = wide[a].to_numpy().astype(float)
    y = wide[b].to_numpy().astype(float)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def _correlations(report: Report, wide: pl.DataFrame) -> None:
    if not report.labels:
        report.missing.append(
            f"labels: none for {report.space}; "
            f"`zcpipe labels import --store {report.store} --space {report.space} FILE`"
        )
        return
    for label in report.labels:
        for proxy in report.proxies:
            x, y = _pair(wide, proxy, label)
            row = {"proxy": proxy, "label": label, "n": len(x), "kendall": None, "spearman": None}
            if len(x) >= 3 and np.ptp(x) > 0:
                row["kendall"] = float(stats.kendalltau(x, y).statistic)
                row["spearman"] = float(stats.spearmanr(x, y).statistic)
            report.correlations.append(row)
    # The blog's average-rank table: rank the proxies by ρ for each label, then average the ranks.
    ranks: dict[str, dict[str, int]] = {p: {} for p in report.proxies}
    for label in report.labels:
        rows = [r for r in report.correlations if r["label"] == label and r["spearman"] is not None]
        for k, r in enumerate(sorted(rows, key=lambda r: -r["spearman"]), start=1):
            ranks[r["proxy"]][label] = k
    report.average_rank = sorted(
        (
            {"proxy": p, "ranks": ranks[p], "mean_rank": float(np.mean(list(ranks[p].values())))}
            for p in report.proxies
            if ranks[p]
        ),
        key=lambda r: r["mean_rank"],
    )


def _proxy_matrix(report: Report, wide: pl.DataFrame) -> None:
    if len(report.proxies) < 2:
        report.missing.append("proxy heatmap: the configuration has one proxy; ingest with more --proxies")
        return
    values = np.stack([wide[p].to_numpy().astype(float) for p in report.proxies], axis=1)
    rho = stats.spearmanr(values, nan_policy="omit").statistic
    report.proxy_matrix = np.atleast_2d(rho).tolist()


def _scatter(report: Report, wide: pl.DataFrame, predictions: pl.DataFrame, models: pl.DataFrame) -> None:
    if report.target is None:
        return
    top = sorted(
        (r for r in report.correlations if r["label"] == report.target and r["spearman"] is not None),
        key=lambda r: -abs(r["spearman"]),
    )[:3]
    for r in top:
        x, y = _pair(wide, r["proxy"], report.target)
        report.scatter[f"proxy {r['proxy']}"] = {"x": x.tolist(), "y": y.tolist(), "log": bool(np.all(x >= 0))}
    named = set(models["name"].to_list()) if len(models) else set()
    scored = [m for m in predictions["model"].unique().sort().to_list() if m in named] if len(predictions) else []
    if not scored:
        report.missing.append(
            f"predictor scatter: no scored models; `zcpipe train`, then `zcpipe predict --store {report.store} "
            "--model NAME`"
        )
    for name in scored[:6]:
        p = predictions.filter(pl.col("model") == name).join(wide.select(["arch", report.target]), on="arch")
        x, y = _pair(p, "score", report.target)
        report.scatter[f"model {name}"] = {"x": x.tolist(), "y": y.tolist(), "log": False}


def _curves(report: Report, models: pl.DataFrame) -> None:
    if not len(models):
        report.missing.append(f"τ vs training-set size: no models; `zcpipe train --store {report.store} ...`")
        return
    target = report.target or models["target"][0]
    rows = models.filter(pl.col("target") == target)
    rows = rows.with_columns(
        pl.struct("predictor", "hparams").map_elements(_variant, return_dtype=pl.String).alias("v")
    )
    grouped = rows.group_by("v", "train_size").agg(
        pl.col("kendall").mean().alias("mean"), pl.col("kendall").std().alias("std"), pl.len().alias("n")
    )
    for r in grouped.sort("v", "train_size").iter_rows(named=True):
        report.curves.append(
            {"predictor": r["v"], "train_size": r["train_size"], "mean": r["mean"], "std": r["std"] or 0.0, "n": r["n"]}
        )


def _variant(row: dict) -> str:
    """A predictor's name plus the options where they differ from its defaults (e.g. parzc align=position)."""
    from zcpipe.predictors import get_predictor

    hp = json.loads(row["hparams"]) if isinstance(row["hparams"], str) else row["hparams"]
    try:
        defaults = get_predictor(row["predictor"]).hparams
    except ValueError:
        return row["predictor"]
    extra = " ".join(f"{k}={v}" for k, v in sorted(hp.items()) if defaults.get(k) != v)
    return f"{row['predictor']} {extra}".strip()


def _profile(catalog: Catalog, space: str, chash: str, proxies: list[str]) -> dict[str, Any]:
    """Mean of a layer proxy per slot position across architectures, split by op: what only node-wise
    statistics can draw. Prefers synflow, then snip, then the first layer proxy."""
    columns = set(readers.columns(catalog, "layers"))
    layer_proxies = [p for p in proxies if p in columns and p not in ("params", "flops")]
    if not layer_proxies:
        return {}
    proxy = next((p for p in ("synflow", "snip") if p in layer_proxies), layer_proxies[0])
    rows = [(r["slot"], r["op"], r["mean"], r["n"]) for r in readers.layer_means(catalog, space, chash, proxy)]
    try:
        order = {s: i for i, s in enumerate(get_space(space).slots())}
    except UnknownSpaceError:
        order = {s: i for i, s in enumerate(sorted({r[0] for r in rows}))}
    by_op: dict[str, list[tuple[int, float]]] = {}
    for slot, op, mean, _ in rows:
        if mean is not None and slot in order:
            by_op.setdefault(op, []).append((order[slot], float(mean)))
    return {"proxy": proxy, "slots": len(order), "by_op": {op: sorted(v) for op, v in sorted(by_op.items())}}


def _mean(frame: pl.DataFrame, col: str) -> float | None:
    """The column's mean, None where it has no values (rows without timings)."""
    m = frame[col].mean() if col in frame.columns and len(frame) else None
    return None if m is None else float(m)


def _meta(archs: pl.DataFrame, runs: list[dict], chash: str) -> dict[str, Any]:
    def distinct(col: str) -> list:
        return archs[col].unique().sort().to_list() if col in archs.columns else []

    mine = [r for r in runs if r["config_hash"] == chash]  # the configuration this report is about
    config = json.loads(mine[-1]["config"]).get("values", {}) if mine else {}
    return {
        "archs": len(archs),
        "status": dict(archs.group_by("status").len().iter_rows()) if len(archs) else {},
        "seconds_per_arch": _mean(archs, "seconds"),
        "devices": distinct("device"),
        "zcpipe_versions": distinct("zcpipe_version"),
        "torch_versions": distinct("torch_version"),
        "config": config,
        "runs": [{k: v for k, v in r.items() if k != "config"} for r in runs],
    }
