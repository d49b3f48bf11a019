"""NB101 and the NDS spaces: keys, facts from the literature, slots, every shared genotype runs."""

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import torch

from tests.conftest import SHARED_DATA
from zcpipe.workers.spaces import ArchError, BuildOptions, get_space, weight_layers
from zcpipe.workers.spaces.nb101 import graph_hash
from zcpipe.workers.spaces.nds import NdsSpace

NDS = ["nds-darts", "nds-enas", "nds-nasnet", "nds-amoeba", "nds-pnas"]
DARTS_V2 = {
    "normal": [
        ["sep_conv_3x3", 0],
        ["sep_conv_3x3", 1],
        ["sep_conv_3x3", 0],
        ["sep_conv_3x3", 1],
        ["sep_conv_3x3", 1],
        ["skip_connect", 0],
        ["skip_connect", 0],
        ["dil_conv_3x3", 2],
    ],
    "normal_concat": [2, 3, 4, 5],
    "reduce": [
        ["max_pool_3x3", 0],
        ["max_pool_3x3", 1],
        ["skip_connect", 2],
        ["max_pool_3x3", 1],
        ["max_pool_3x3", 0],
        ["skip_connect", 2],
        ["skip_connect", 2],
        ["max_pool_3x3", 1],
    ],
    "reduce_concat": [2, 3, 4, 5],
}


def _nb101_rows():
    return [json.loads(line) for line in open(SHARED_DATA / "nb101" / "labels.jsonl")]


def _params(model):
    return sum(p.numel() for p in model.parameters())


def test_nb101_parameter_facts_from_nas_bench_suite_zero():
    s = get_space("nb101")
    rows = _nb101_rows()
    counts = [_params(s.build(s.spec(json.dumps(r)), BuildOptions())) for r in rows[:2]]
    assert counts == [4_095_778, 1_749_031]


def test_nb101_hash_is_invariant_to_vertex_order_and_dead_vertices():
    ops = ["input", "conv3x3-bn-relu", "conv1x1-bn-relu", "output"]
    m = np.array([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]])
    swapped = ["input", "conv1x1-bn-relu", "conv3x3-bn-relu", "output"]  # the two branches relabelled
    assert graph_hash(m, ops) == graph_hash(m, swapped)
    s = get_space("nb101")
    live = json.dumps({"matrix": m.tolist(), "ops": ops})
    dead = np.zeros((5, 5), int)
    dead[:4, :4] = m
    dead[1, 4] = 1  # vertex 4 is never read by the output: pruned
    with_dead = json.dumps({"matrix": dead.tolist(), "ops": [*ops[:3], "maxpool3x3", "output"]})
    # vertex 3 becomes the output; vertex 4 is dead -> pruned away
    with_dead = json.dumps(
        {
            "matrix": [[0, 1, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
            "ops": [*ops[:3], "maxpool3x3", "output"],
        }
    )
    assert s.parse(live) == s.parse(with_dead)
    assert s.spec(with_dead) == s.spec(live)


@pytest.mark.parametrize(
    "bad,match",
    [
        ('{"matrix": [[0,1],[1,0]], "ops": ["input","output"]}', "upper-triangular"),
        ('{"matrix": [[0,1,0],[0,0,1],[0,0,0]], "ops": ["input","conv5x5","output"]}', "NB101 ops"),
        ('{"matrix": [[0,1,0],[0,0,0],[0,0,0]], "ops": ["input","maxpool3x3","output"]}', "no path"),
        ("not json", "malformed NB101"),
        ("4a0ab8bbe2441a002e07b0f445ec2d63", "cannot build it"),
    ],
)
def test_nb101_rejects_bad_specs(bad, match):
    with pytest.raises(ArchError, match=match):
        get_space("nb101").parse(bad)


def test_nb101_sample_is_seeded_valid_and_distinct():
    s = get_space("nb101")
    a = s.sample(40, 0)
    assert a == s.sample(40, 0) and len({s.parse(x) for x in a}) == 40
    universe = s.slots()
    for spec in a[:10]:
        slots = [m.zc_slot for _, m in weight_layers(s.build(spec, BuildOptions()))]
        pos = [universe.index(x) for x in slots]
        assert len(set(slots)) == len(slots) and pos == sorted(pos)


def test_darts_v2_has_3_3m_parameters_at_36_channels_and_20_cells():
    space = NdsSpace("nds-darts", width=36, depth=20)
    model = space.build(space.parse(json.dumps(DARTS_V2)), BuildOptions())
    # DARTS reports 3.3M; its training script prints "param size = 3.349342MB" (no auxiliary head).
    assert _params(model) == 3_349_342


def test_nds_key_is_canonical_and_errors_are_clear():
    s = get_space("nds-darts")
    flipped = json.loads(json.dumps(DARTS_V2))
    flipped["normal"][0], flipped["normal"][1] = flipped["normal"][1], flipped["normal"][0]
    assert s.parse(json.dumps(flipped)) == s.parse(json.dumps(DARTS_V2))
    assert s.parse(s.parse(json.dumps(DARTS_V2))) == s.parse(json.dumps(DARTS_V2))
    bad = json.loads(json.dumps(DARTS_V2))
    bad["normal"][0] = ["conv_7x1_1x7", 0]
    with pytest.raises(ArchError, match="outside the space"):
        s.parse(json.dumps(bad))
    bad["normal"][0] = ["sep_conv_3x3", 4]
    with pytest.raises(ArchError, match=r"may read 0\.\.1"):
        s.parse(json.dumps(bad))


def test_loose_end_spaces_concatenate_only_unused_nodes():
    s = get_space("nds-enas")
    arch = s.sample(1, 3)[0]
    model = s.build(arch, BuildOptions())
    normal = model.cells[0]
    used = set(normal.inputs)
    assert normal.concat == [n for n in range(2, 7) if n not in used]


@pytest.mark.parametrize("name", NDS)
def test_each_nds_space_builds_runs_and_tags_every_layer(name):
    s = get_space(name)
    universe = {x: i for i, x in enumerate(s.slots())}
    for arch in s.sample(3, 0):
        model = s.build(arch, BuildOptions())
        out = model(torch.randn(2, 3, 32, 32))
        assert out.shape == (2, 10)
        pos = [universe[m.zc_slot] for _, m in weight_layers(model)]
        assert pos == sorted(set(pos))
        g = s.graph(arch)
        assert g.adjacency.shape == (len(g.ops), len(g.ops))


def _runs_forward_and_backward(key: str) -> bool:
    torch.set_num_threads(1)  # two single-threaded processes beat one with two threads on these small tensors
    # 8x8 images and a narrow, shallow network keep every op of both cell types and both reductions in play
    # at a fraction of the cost of the benchmark's (what is checked, that each genotype builds and every
    # weight gets a gradient, does not depend on the width or the number of cells).
    model = get_space("nds-darts", width=4, depth=3).build(key, BuildOptions())
    model(torch.randn(2, 3, 8, 8)).logsumexp(1).mean().backward()
    return all(m.weight.grad is not None for _, m in weight_layers(model))


@pytest.mark.slow
def test_every_shared_darts_genotype_runs_forward_and_backward():
    s = get_space("nds-darts")
    rows = [json.loads(line) for line in open(SHARED_DATA / "darts" / "labels.jsonl")]
    assert len(rows) == 725
    keys = [s.parse(json.dumps(r)) for r in rows]
    assert len(set(keys)) == 725
    # Spawned, not forked: a forked child inherits torch's OpenMP pool and spins (libgomp after fork).
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert all(pool.map(_runs_forward_and_backward, keys, chunksize=25))


@pytest.mark.parametrize("space_name", ["nb201", "nb101", "nds-darts"])
def test_a_larger_sample_only_adds_cells(space_name):
    """`--limit 12` after `--limit 10` computes 2 cells: sample(n, seed) is the first n of one seeded order."""
    space = get_space(space_name)
    for seed in (0, 7):
        assert space.sample(12, seed)[:10] == space.sample(10, seed)
    assert space.sample(10, 0) != space.sample(10, 1)
