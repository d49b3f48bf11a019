"""`zcpipe report` as one self-contained HTML page: tables in HTML, figures as PNGs embedded in base64.

matplotlib rather than plotly: static PNGs need no JavaScript, so the page opens offline anywhere and
stays small (plotly's offline bundle adds about 3.5 MB to every page), and the figures can be written
as files too (`--png DIR`).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display; set before pyplot loads
import matplotlib.pyplot as plt
import numpy as np

from zcpipe.pipeline.reports.nas import nas_figures, nas_section
from zcpipe.pipeline.reports.numbers import Report

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: .25em .5em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.missing { background: #fff6e0; border-left: 4px solid #e0a000; padding: .5em 1em; }
img { max-width: 100%; } code { background: #f3f3f3; padding: 0 .2em; }
"""


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


_DASHES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "v", "D", "x", "+", "*")


def _label_cells(ax, im, m: np.ndarray, fontsize: int = 7) -> None:
    """Each cell's value, in white on dark cells and black on light ones (the cell colour's luminance)."""
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if not np.isfinite(m[i, j]):
                continue
            r, g, b, _ = im.cmap(im.norm(m[i, j]))
            colour = "white" if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5 else "black"
            ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=fontsize, color=colour)


def _has_curve(curves: list[dict]) -> bool:
    """Whether some predictor was fitted at two or more training sizes: a curve, not a point."""
    sizes: dict[str, set] = {}
    for c in curves:
        sizes.setdefault(c["predictor"], set()).add(c["train_size"])
    return any(len(v) > 1 for v in sizes.values())


def figures(report: Report) -> dict[str, bytes]:
    """name -> PNG, for every figure the report has data for."""
    out: dict[str, bytes] = {}
    if report.proxy_matrix:
        n = len(report.proxies)
        fig, ax = plt.subplots(figsize=(1 + 0.55 * n, 0.8 + 0.5 * n))
        m = np.array(report.proxy_matrix, dtype=float)
        im = ax.imshow(m, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks(range(n), report.proxies, rotation=60, ha="right")
        ax.set_yticks(range(n), report.proxies)
        _label_cells(ax, im, m)
        fig.colorbar(im, ax=ax, label="Spearman ρ")
        ax.set_title("proxy-proxy rank correlation")
        out["heatmap"] = _png(fig)
    if report.scatter:
        k = len(report.scatter)
        cols = min(3, k)
        rows = -(-k // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
        for ax, (name, d) in zip(axes.flat, report.scatter.items(), strict=False):
            x = np.asarray(d["x"], dtype=float)
            xlabel = "score"
            if d["log"] and (x > 0).any():  # proxies spanning decades (synflow): plot the exponent
                x = np.log10(np.maximum(x, x[x > 0].min()))
                xlabel = "log10 score (zeros drawn at the smallest positive)"
            ax.scatter(x, d["y"], s=4, alpha=0.4)
            ax.set_title(name, fontsize=9)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(report.target)
        for ax in list(axes.flat)[k:]:
            ax.axis("off")
        fig.tight_layout()
        out["scatter"] = _png(fig)
    if _has_curve(report.curves):  # one training size is a table (below), not a plot of single points
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for name in dict.fromkeys(c["predictor"] for c in report.curves):
            pts = [c for c in report.curves if c["predictor"] == name]
            ax.errorbar(
                [c["train_size"] for c in pts],
                [c["mean"] for c in pts],
                yerr=[c["std"] for c in pts],
                marker="o",
                capsize=3,
                label=name,
            )
        ax.set_xscale("log")
        ax.set_xlabel("training cells")
        ax.set_ylabel("Kendall τ on held-out cells")
        ax.legend(fontsize=7, ncol=2)
        out["curves"] = _png(fig)
    out.update(task_figures(report.tasks))
    out.update(nas_figures(report.nas, _png))
    if report.profile.get("by_op"):
        fig, ax = plt.subplots(figsize=(10, 3.6))
        for op, pts in report.profile["by_op"].items():
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=10, label=op)
        ax.set_yscale("symlog")
        ax.set_xlabel(f"slot position (depth-first, of {report.profile['slots']})")
        ax.set_ylabel(f"mean {report.profile['proxy']}")
        ax.legend(fontsize=7, ncol=6, loc="upper center", bbox_to_anchor=(0.5, -0.2))
        out["profile"] = _png(fig)
    return out


def task_figures(t: dict) -> dict[str, bytes]:
    """Across tasks: the Dolan-Moré performance profiles and one proxy-proxy heatmap per task."""
    if not t:
        return {}
    out: dict[str, bytes] = {}
    fig, ax = plt.subplots(figsize=(7, 4.2))
    tau = t["profiles"]["tau"]
    ends: dict[float, list[tuple[str, str]]] = {}  # lines ending at one height: their names are stacked
    for k, (p, share) in enumerate(t["profiles"]["share"].items()):
        # Many proxies share a profile's steps: tell the lines apart by dash and marker, and name each at its end.
        style = {"linestyle": _DASHES[k % len(_DASHES)], "marker": _MARKERS[k % len(_MARKERS)]}
        (line,) = ax.step(tau, share, where="post", label=p, markevery=max(1, len(tau) // 6), markersize=4, **style)
        ends.setdefault(round(float(share[-1]), 3), []).append((p, line.get_color()))
    for y, names in ends.items():
        for i, (p, colour) in enumerate(names):
            ax.annotate(p, (tau[-1], y), xytext=(6, (i - (len(names) - 1) / 2) * 7), textcoords="offset points",
                        fontsize=6, color=colour, va="center")  # fmt: skip
    ax.set_xlim(tau[0], tau[-1] + 0.15 * (tau[-1] - tau[0]))  # room for the names
    ax.set_xlabel("τ (cost 1 − ρ within τ times the best proxy's)")
    ax.set_ylabel("share of tasks")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, ncol=3)
    out["task-profiles"] = _png(fig)
    for k, task in enumerate(t["tasks"]):
        n = len(task["proxies"])
        fig, ax = plt.subplots(figsize=(1 + 0.5 * n, 0.8 + 0.45 * n))
        m = np.array(task["heatmap"], dtype=float)
        im = ax.imshow(m, vmin=-1, vmax=1, cmap="RdBu_r")
        _label_cells(ax, im, m, fontsize=6)
        ax.set_xticks(range(n), task["proxies"], rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(n), task["proxies"], fontsize=7)
        fig.colorbar(im, ax=ax, label="Spearman ρ")
        ax.set_title(task["task"], fontsize=9)
        out[f"task-heatmap-{k}"] = _png(fig)
    return out


def _tasks_section(t: dict, figs: dict[str, bytes]) -> list[str]:
    if not t:
        return []
    names = [task["task"] for task in t["tasks"]]
    parts = ['<h2 id="tasks">Across tasks</h2>',
             "<p>Spearman ρ of every proxy against each task's own label (its validation accuracy).</p>"]  # fmt: skip
    rows = [[p, *[task["spearman"].get(p) for task in t["tasks"]]] for p in t["proxies"]]
    parts.append(
        _table(
            ["proxy", *[f"{n} ({task['label']}, n={task['n']})" for n, task in zip(names, t["tasks"], strict=True)]],
            rows,
        )
    )
    avg = t["average_rank"]
    spaces = list(avg["by_space"])
    order = sorted(t["proxies"], key=lambda p: avg["overall"][p])
    parts.append("<h3>Average rank (1 = best ρ), per search space and overall</h3>")
    parts.append(
        _table(
            ["proxy", *spaces, "overall"],
            [[p, *[avg["by_space"][s][p] for s in spaces], avg["overall"][p]] for p in order],
        )
    )
    parts.append("<h3>Performance profiles (Dolan-Moré)</h3>")
    parts.append(_img(figs, "task-profiles"))
    parts.append("<h3>Proxy-proxy rank correlation per task</h3>")
    parts += [_img(figs, f"task-heatmap-{k}") for k in range(len(t["tasks"]))]
    return parts


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1e4 else f"{v:.3g}"
    return html.escape(str(v))


def _table(head: list[str], rows: list[list]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _img(figs: dict[str, bytes], name: str) -> str:
    if name not in figs:
        return ""
    return f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(figs[name]).decode()}">'


def render(report: Report, figs: dict[str, bytes]) -> str:
    r = report
    parts = [
        f"<h1>zcpipe report: {html.escape(r.space)}</h1>",
        f"<p>Store <code>{html.escape(r.store)}</code>, statistics configuration <code>{r.config_hash}</code>, "
        f"{r.meta.get('archs', 0)} architectures; ranking target <code>{html.escape(str(r.target))}</code>.</p>",
    ]
    if r.missing:
        parts.append(
            '<div class="missing" id="missing"><b>Not in this store yet:</b><ul>'
            + "".join(f"<li>{html.escape(m)}</li>" for m in r.missing)
            + "</ul></div>"
        )
    parts.append('<h2 id="correlations">Proxies against ground truth</h2>')
    if r.correlations:
        n_label = r.target or r.labels[0]
        parts.append(f"<p>Kendall τ and Spearman ρ over the architectures with both values; n for {n_label}.</p>")
        head = ["proxy", *[f"{lab} {m}" for lab in r.labels for m in ("τ", "ρ")], "n"]
        rows = []
        for p in r.proxies:
            cells = {c["label"]: c for c in r.correlations if c["proxy"] == p}
            row: list = [p]
            for lab in r.labels:
                row += [cells[lab]["kendall"], cells[lab]["spearman"]]
            rows.append([*row, cells[n_label]["n"]])
        parts.append(_table(head, rows))
    else:
        parts.append("<p>No labels: nothing to correlate.</p>")
    parts.append('<h2 id="average-rank">Average rank across labels</h2>')
    if r.average_rank:
        parts.append(
            _table(
                ["proxy", *r.labels, "mean rank"],
                [[a["proxy"], *[a["ranks"].get(lab) for lab in r.labels], a["mean_rank"]] for a in r.average_rank],
            )
        )
    else:
        parts.append("<p>No labels: no ranking.</p>")
    parts.append('<h2 id="heatmap">Proxy-proxy rank correlation</h2>')
    parts.append(_img(figs, "heatmap") or "<p>Needs at least two proxies.</p>")
    parts.append(f'<h2 id="scatter">Scores against {html.escape(str(r.target))}</h2>')
    parts.append(_img(figs, "scatter") or "<p>Needs labels.</p>")
    parts.append('<h2 id="curves">Kendall τ against training-set size</h2>')
    if r.curves:
        parts.append(_img(figs, "curves") or "<p>One training size per predictor: the table says it all.</p>")
        parts.append(
            _table(
                ["predictor", "train size", "mean τ", "std", "fits"],
                [[c["predictor"], c["train_size"], c["mean"], c["std"], c["n"]] for c in r.curves],
            )
        )
    else:
        parts.append("<p>No trained models.</p>")
    parts.append('<h2 id="profile">Per-slot profile</h2>')
    if r.profile.get("by_op"):
        parts.append(f"<p>Mean {r.profile['proxy']} at each layer position, across architectures, by operation.</p>")
        parts.append(_img(figs, "profile"))
    else:
        parts.append("<p>No layer-wise proxy in this configuration.</p>")
    parts += _tasks_section(r.tasks, figs)
    parts += nas_section(r.nas, lambda name: _img(figs, name), _table)
    m = r.meta
    parts.append('<h2 id="metadata">Runs and provenance</h2>')
    parts.append(
        _table(
            ["field", "value"],
            [
                ["status", ", ".join(f"{k}: {v}" for k, v in m.get("status", {}).items())],
                ["seconds per architecture (mean, in workers)", m.get("seconds_per_arch")],
                ["devices", ", ".join(map(str, m.get("devices", [])))],
                ["zcpipe", ", ".join(map(str, m.get("zcpipe_versions", [])))],
                ["torch", ", ".join(map(str, m.get("torch_versions", [])))],
                *[[k, v] for k, v in sorted(m.get("config", {}).items())],
            ],
        )
    )
    if m.get("runs"):  # every run of the space, whichever task or configuration it computed
        keys = ["run_id", "dataset", "config_hash", "state", "planned", "done", "skipped", "failed", "started_at",
                "finished_at"]  # fmt: skip
        parts.append(_table(keys, [[run.get(k) for k in keys] for run in m["runs"]]))
    else:
        parts.append("<p>No run records (shards registered by <code>store reconcile</code>).</p>")
    data = r.data_json().replace("</", "<\\/")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>zcpipe report: {html.escape(r.space)}</title>"
        f"<style>{_CSS}</style></head><body>{''.join(parts)}"
        f'<script type="application/json" id="report-data">{data}</script></body></html>'
    )


def write_report(report: Report, out: Path | None, png_dir: Path | None = None) -> dict[str, bytes]:
    """Write the report's HTML page to `out` and/or its figures as PNGs to `png_dir`; returns the figures."""
    figs = figures(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(render(report, figs))
        tmp.replace(out)  # a reader never sees half a page
    if png_dir is not None:
        png_dir.mkdir(parents=True, exist_ok=True)
        for name, data in figs.items():
            (png_dir / f"{name}.png").write_bytes(data)
    return figs
