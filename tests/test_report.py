"""`zcpipe report` from a small real ingest: sections, numbers equal to scipy's, and a page Chromium opens."""

import json
import re
import shutil
import subprocess

import pytest
from scipy import stats

from tests.helpers import ZCPIPE, cli, ingest_args, nb201_labels_for
from zcpipe.store import Catalog
from zcpipe.workers.spaces import get_space

pytestmark = pytest.mark.slow
SECTIONS = ["correlations", "average-rank", "heatmap", "scatter", "curves", "profile", "metadata"]


def zcpipe(*args):
    out = cli(*args)
    assert out.returncode == 0, out.stderr
    return out


def _data(page: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)[1])


def test_report_renders_what_the_store_has_and_says_what_it_lacks(tmp_path):
    store = tmp_path / "s"
    zcpipe(*ingest_args(store, 6, "--proxies", "synflow")[len(ZCPIPE) :])

    # one proxy, no labels, no models: it still renders, and says what is missing
    page = tmp_path / "bare.html"
    zcpipe("report", "--store", store, "--out", page)
    bare = page.read_text()
    assert all(f'id="{s}"' in bare for s in SECTIONS) and 'id="missing"' in bare
    missing = " ".join(_data(bare)["missing"])
    assert "zcpipe labels import" in missing and "no models" in missing
    assert _data(bare)["proxies"] == ["params", "flops", "synflow"]  # params and flops come with every ingest

    archs = get_space("nb201").sample(6, 0)  # what `--limit 6` ingested
    zcpipe("labels", "import", "--store", store, "--space", "nb201", nb201_labels_for(archs, tmp_path))
    zcpipe("train", "--store", store, "--space", "nb201", "--predictor", "proxy:synflow", "--target", "cifar10_valid",
           "--train-size", 2, "--name", "syn")  # fmt: skip
    zcpipe("predict", "--store", store, "--model", "syn")
    page = tmp_path / "full.html"
    zcpipe("report", "--store", store, "--out", page, "--png", tmp_path / "png")
    full = page.read_text()
    data = _data(full)
    assert data["target"] == "cifar10_valid" and "cifar10_test" in data["labels"]
    # One training size: the τ-against-size section is a table, not a plot of one point in an empty frame.
    assert {p.name for p in (tmp_path / "png").iterdir()} == {"heatmap.png", "scatter.png", "profile.png"}
    assert full.count("data:image/png;base64,") == 3  # self-contained: figures inline, nothing fetched
    assert "One training size per predictor" in full

    rows = Catalog(store).query("SELECT synflow, value FROM archs_labeled WHERE label = 'cifar10_valid'").to_pylist()
    x, y = [r["synflow"] for r in rows], [r["value"] for r in rows]
    got = next(c for c in data["correlations"] if c["proxy"] == "synflow" and c["label"] == "cifar10_valid")
    assert got["n"] == 6
    assert got["kendall"] == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert got["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert f"{got['kendall']:.3f}" in full  # the table shows the same number
    assert [c["predictor"] for c in data["curves"]] == ["proxy:synflow"]
    zcpipe("train", "--store", store, "--space", "nb201", "--predictor", "proxy:synflow", "--target", "cifar10_valid",
           "--train-size", 3, "--name", "syn3")  # fmt: skip
    zcpipe("report", "--store", store, "--out", page, "--png", tmp_path / "png2")
    assert (tmp_path / "png2" / "curves.png").exists()  # two sizes: now a curve
    full = page.read_text()

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it): page not rendered to PNG")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chrome'}", "--window-size=1200,2000", f"--screenshot={shot}",
         page.as_uri()],
        capture_output=True, timeout=120,
    )  # fmt: skip
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    # What the browser shows: every run listed under provenance, every figure decoded (none broken).
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         f"--user-data-dir={tmp_path / 'chrome2'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    runs = Catalog(store).query("SELECT run_id FROM runs").column("run_id").to_pylist()
    assert runs and all(run in dom.split('id="metadata"')[1] for run in runs)
    assert dom.count("<img") == full.count("<img") == 4
