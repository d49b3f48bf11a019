"""The batched path's block moves (workers/batched/blocks.py) against plain indexing, both ways of
moving (slices and index kernels), first and second derivatives."""

from __future__ import annotations

import pytest
import torch

from zcpipe.workers.batched import blocks as blocks_mod
from zcpipe.workers.batched.blocks import Blocks, join_blocks, split_blocks

# (groups of block indices, size): runs, singletons, a block nobody takes, reversed order.
LAYOUTS = [
    ([[0, 1], [2, 3]], 4),
    ([[3, 0], [1]], 5),
    ([[4, 5, 6], [0, 2], [7, 1]], 8),
    ([[2]], 3),
    ([[1, 0], [2]], 3),  # one group's neighbours, not in its order
    ([[0, 2, 1]], 3),
]


@pytest.fixture(params=["slices", "index"])
def mode(request, monkeypatch):
    if request.param == "index":
        monkeypatch.setattr(blocks_mod, "MAX_PIECES", 0)
    return request.param


@pytest.mark.parametrize("groups,size", LAYOUTS)
def test_split_and_join_equal_indexing(groups, size, mode):
    blocks = Blocks.of(groups, size, torch.device("cpu"))
    assert (blocks.runs is None) == (mode == "index")
    x = torch.randn(3, size, 5, dtype=torch.float64)
    parts = split_blocks(x, blocks)
    for g, part in zip(groups, parts, strict=True):
        assert torch.equal(part, x[:, g])
    joined = join_blocks(list(parts), blocks)
    taken = sorted(i for g in groups for i in g)
    expected = torch.zeros_like(x)
    expected[:, taken] = x[:, taken]
    assert torch.equal(joined, expected)


@pytest.mark.parametrize("groups,size", LAYOUTS)
def test_moves_have_exact_first_and_second_derivatives(groups, size, mode):
    blocks = Blocks.of(groups, size, torch.device("cpu"))
    x = torch.randn(2, size, 3, dtype=torch.float64, requires_grad=True)
    parts = [torch.randn(2, len(g), 3, dtype=torch.float64, requires_grad=True) for g in groups]

    def split_then_square(t):  # nonlinear, so the second derivative goes through the moves again
        return tuple(p**2 for p in split_blocks(t, blocks))

    def join_then_square(*ps):
        return join_blocks(list(ps), blocks) ** 2

    assert torch.autograd.gradcheck(split_then_square, (x,))
    assert torch.autograd.gradgradcheck(split_then_square, (x,))
    assert torch.autograd.gradcheck(join_then_square, tuple(parts))
    assert torch.autograd.gradgradcheck(join_then_square, tuple(parts))


def test_an_unused_group_gets_a_zero_gradient(mode):
    blocks = Blocks.of([[0, 2], [1]], 3, torch.device("cpu"))
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    first, _ = split_blocks(x, blocks)
    first.sum().backward()
    assert torch.equal(x.grad[:, [0, 2]], torch.ones(2, 2, 4, dtype=torch.float64))
    assert torch.equal(x.grad[:, 1], torch.zeros(2, 4, dtype=torch.float64))


def test_repeated_or_out_of_range_blocks_are_refused():
    with pytest.raises(ValueError, match="distinct"):
        Blocks.of([[0, 1], [1]], 3, torch.device("cpu"))
    with pytest.raises(ValueError, match="distinct"):
        Blocks.of([[3]], 3, torch.device("cpu"))
