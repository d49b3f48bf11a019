"""Moving architectures' channel blocks between a stacked tensor and its op groups.

At a choice (docs/proxies.md, "The batched path") each op group reads the blocks of the architectures
that chose it, and the groups' outputs are put back in architecture order. Both are done here as two
autograd functions, each the other's adjoint: `split_blocks` takes each group's blocks out of a
stacked `[n, M, L]` tensor (M blocks of L values per image), `join_blocks` places the groups' blocks
at their positions of a new one (zeros where no group is: an architecture that chose `none`).

Why not `index_select` and autograd's own rule: its backward fills a zero tensor of the whole input
and scatter-adds into it, and on a 5-d view the CPU kernel copies element by element (4.3 ms for
one NB201 state at B=4 against 0.6 ms for a plain copy). A group's indices never repeat, so the
adjoint of taking blocks is placing them, with no zero fill beyond the blocks nobody took and no
addition; and because each backward calls the other function, GraSP's double backward stays as
cheap (`tests/test_blocks.py` checks both against indexing, with gradcheck and gradgradcheck).

A move is one concatenation of slices, runs of consecutive blocks, where there are few: a pass of
architectures sorted by spec (`ProxyWorker.compute_many`) has long runs, and a slice copies at
memory speed. With many runs (large random passes on a GPU) it is one indexing kernel instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Above this many pieces (runs of consecutive blocks) a move is one indexing kernel instead of one
# concatenation of slices: on a CPU a slice copies at memory speed and an indexing kernel computes an
# address per element (2-4x slower, bench/README.md); on a GPU each piece of a concatenation of
# strided slices may be a launch of its own.
MAX_PIECES = 16


@dataclass(frozen=True)
class Blocks:
    """Where each group's blocks sit in a stacked tensor of `size` blocks: `indices[g]` (distinct
    across groups, in the group's order); the blocks no group holds are zeros.

    `runs[g]` are group g's blocks as (start, stop) runs of consecutive blocks, and `pieces` the whole
    stacked tensor as runs in order, `(group or -1 for zeros, offset in the group, length)`; both are
    None when there are more than `MAX_PIECES` pieces, and the moves index instead.
    """

    indices: tuple[torch.Tensor, ...]
    missing: torch.Tensor | None
    size: int
    runs: tuple[tuple[tuple[int, int], ...], ...] | None
    pieces: tuple[tuple[int, int, int], ...] | None

    @classmethod
    def of(cls, indices: list[list[int]], size: int, device: torch.device) -> Blocks:
        """The layout of groups `indices` (each a list of block positions) in `size` blocks, its index
        tensors on `device`, made once when a batched network is built. Refuses repeated positions."""
        flat = [i for group in indices for i in group]
        if len(set(flat)) != len(flat) or not all(0 <= i < size for i in flat):
            raise ValueError(f"block indices must be distinct and in [0, {size}): {indices}")
        owner = {i: (g, k) for g, group in enumerate(indices) for k, i in enumerate(group)}
        pieces: list[list[int]] = []
        for i in range(size):
            g, k = owner.get(i, (-1, 0))
            last = pieces[-1] if pieces else None
            if last is not None and last[0] == g and (g == -1 or last[1] + last[2] == k):
                last[2] += 1
            else:
                pieces.append([g, k, 1])
        runs = tuple(_runs(group) for group in indices)
        few = len(pieces) <= MAX_PIECES and all(len(r) <= MAX_PIECES for r in runs)
        missing = sorted(set(range(size)) - set(flat))
        return cls(
            tuple(torch.tensor(group, device=device) for group in indices),
            torch.tensor(missing, device=device) if missing else None,
            size,
            runs if few else None,
            tuple(tuple(p) for p in pieces) if few else None,
        )


def _runs(group: list[int]) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for i in group:
        if out and out[-1][1] == i:
            out[-1][1] += 1
        else:
            out.append([i, i + 1])
    return tuple((a, b) for a, b in out)


def split_blocks(x: torch.Tensor, blocks: Blocks) -> tuple[torch.Tensor, ...]:
    """`x[:, indices[g]]` for each group g of a stacked `[n, size, L]` tensor."""
    return _Split.apply(x, blocks)


def join_blocks(parts: list[torch.Tensor], blocks: Blocks) -> torch.Tensor:
    """A new `[n, size, L]` tensor with `parts[g]` at `indices[g]` and zeros at the other blocks."""
    return _Join.apply(blocks, *parts)


class _Split(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, blocks):
        ctx.blocks = blocks
        ctx.set_materialize_grads(False)  # a group whose output feeds nothing gets zeros, not a filled grad
        if blocks.runs is None:
            return tuple(x.index_select(1, index) for index in blocks.indices)
        # torch.cat copies even a single slice: a custom function must not hand out views of its input.
        return tuple(torch.cat([x[:, a:b] for a, b in runs], 1) for runs in blocks.runs)

    @staticmethod
    def backward(ctx, *grads):
        if all(g is None for g in grads):
            return None, None
        return _Join.apply(ctx.blocks, *grads), None


class _Join(torch.autograd.Function):
    @staticmethod
    def forward(ctx, blocks, *parts):
        ctx.blocks = blocks
        like = next(p for p in parts if p is not None)
        n, length = like.shape[0], like.shape[2]
        if blocks.pieces is not None:
            zero = None

            def piece(g: int, at: int, k: int) -> torch.Tensor:
                nonlocal zero
                if g < 0 or parts[g] is None:  # a `none` block, or an unused output's gradient
                    zero = like.new_zeros((n, 1, length)) if zero is None else zero
                    return zero.expand(n, k, length)
                return parts[g][:, at : at + k]

            return torch.cat([piece(*p) for p in blocks.pieces], 1)
        out = like.new_empty((n, blocks.size, length))
        for index, part in zip(blocks.indices, parts, strict=True):
            if part is None:
                out.index_fill_(1, index, 0.0)
            else:
                out.index_copy_(1, index, part)
        if blocks.missing is not None:
            out.index_fill_(1, blocks.missing, 0.0)
        return out

    @staticmethod
    def backward(ctx, grad):
        return None, *_Split.apply(grad, ctx.blocks)
