"""docs/extending.md kept honest: every code block of the page runs, in order, in a fresh interpreter,
and each entry it registers then works where zcpipe looks it up (by name, through the registry)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT

DOC = ROOT / "docs" / "extending.md"

CHECKS = """
import tempfile
from pathlib import Path

from zcpipe.pipeline import import_labels
from zcpipe.pipeline.labels import detect_format
from zcpipe.predictors import get_predictor
from zcpipe.store import Catalog
from zcpipe.store.tensor_reader import TrainingSet
from zcpipe.workers.data import DataSpec, load_batch
from zcpipe.workers.datasets import get_dataset
from zcpipe.workers.spaces import weight_layers

# the proxy: the engine's whole-network value is the sum of an independent per-layer computation
expected = sum(float(m.weight.detach().double().abs().mean()) for _, m in weight_layers(net))
assert abs(stats.values["weight_abs_mean"] - expected) <= 1e-12 * expected, (stats.values, expected)
assert len(stats.layers) == len(weight_layers(net))

# the space: found by name, keys round-trip, every weight layer on a declared slot, proxies compute
space = get_space("chain")
keys = space.sample(3, 0)
assert len(set(keys)) == 3 and [space.parse(k) for k in keys] == keys and space.sample(2, 0) == keys[:2]
model = space.build(keys[0], BuildOptions(num_classes=4, input_shape=(3, 8, 8)))
assert [m.zc_slot for _, m in weight_layers(model)] == space.slots()
small = Batch(torch.randn(4, 3, 8, 8), torch.randint(0, 4, (4,)), 4, "random")
chain_stats = ProxyEngine(get_proxies(["grad_norm", "synflow"])).compute(model, small, generator_seed=0)
assert chain_stats.values["grad_norm"] > 0 and chain_stats.values["synflow"] > 0, chain_stats.values

# the dataset: by name, through the workers' loader
images, labels, classes = load_batch(DataSpec("noise-4", None, 6, 1))
assert images.shape == (6, 3, 8, 8) and classes == 4 and labels.max() < 4 and get_dataset("noise-4").num_classes == 4

# the predictor: by name; recovers a linear target exactly, and survives export/restore
rng = np.random.default_rng(0)
scalars = rng.normal(size=(50, 2))
data = TrainingSet(space="nb201", config_hash="c", archs=[str(i) for i in range(50)], proxies=[], slots=[],
                   nodewise=np.zeros((50, 0, 0)), mask=np.zeros((50, 0), bool), scalar_names=["synflow", "snip"],
                   scalars=scalars, target="t", labels=2 * scalars[:, 0] - scalars[:, 1] + 3)
fitted = get_predictor("lstsq")
fitted.fit(data, seed=0)
assert np.allclose(fitted.predict(data).score, data.labels)
again = get_predictor("lstsq")
again.restore(*fitted.export())
assert np.allclose(again.predict(data).score, data.labels)

# the label format: found by the file's name, imported into a real store
with tempfile.TemporaryDirectory() as tmp:
    tsv = Path(tmp) / "results.tsv"
    tsv.write_text(f"{cell}\\t91.5\\n|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|\\t10.0\\n")
    assert detect_format(tsv) == "tsv"
    import_labels(str(Path(tmp) / "store"), "nb201", str(tsv))
    got = Catalog(Path(tmp) / "store").query("SELECT label, value FROM labels ORDER BY value").to_pylist()
    assert got == [{"label": "cifar10_valid", "value": 10.0}, {"label": "cifar10_valid", "value": 91.5}], got
print("every example works")
"""


def test_every_example_of_the_extending_page_runs_and_its_entries_work():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 6, "a block was added or lost: update this test's checks"
    script = "\n".join(blocks) + CHECKS
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "every example works" in r.stdout


def test_every_extension_point_is_the_one_registry_and_an_unknown_name_lists_the_choices():
    import pytest

    import zcpipe.pipeline.labels  # noqa: F401  (sets the label formats' loader)
    from zcpipe.errors import InputError
    from zcpipe.pipeline.labels.formats import LABEL_FORMATS
    from zcpipe.predictors import PREDICTORS
    from zcpipe.registry import Registry
    from zcpipe.workers.datasets import DATASETS
    from zcpipe.workers.proxies import PROXIES
    from zcpipe.workers.spaces import SPACES

    for registry, some in ((SPACES, "nb201"), (PROXIES, "synflow"), (DATASETS, "cifar10"), (PREDICTORS, "parzc"),
                           (LABEL_FORMATS, "csv")):  # fmt: skip
        assert isinstance(registry, Registry) and some in registry and registry.get(some).name == some
        with pytest.raises(InputError, match=f"unknown {registry.kind} 'nope'.*choose one of: .*{some}"):
            registry.get("nope")
    assert PROXIES.names(lambda p: p.pass_name == "data") == ["epe_nas", "fisher", "grad_norm", "grasp", "jacov",
                                                               "nwot", "plain", "snip"]  # fmt: skip
    with pytest.raises(TypeError, match="no attribute colour"):
        PROXIES.register("x", colour="red")  # an undeclared attribute is a mistake at import
    with pytest.raises(ValueError, match="registered twice"):
        SPACES.register("nb201")(lambda: None)
    # No other registry shape is left in the tree.
    hand_kept = [p for p in ROOT.glob("*/**/*.py") if ".venv" not in p.parts and "tests" not in p.parts
                 and "_REGISTRY" in p.read_text()]  # fmt: skip
    assert hand_kept == []
