"""The evaluation protocol: N training cells drawn with a seed, every other labeled cell is a test cell."""

from __future__ import annotations

import numpy as np

from zcpipe.errors import InputError, PredictorError


class ProtocolError(PredictorError, InputError, ValueError):
    """A train/test split that the cells at hand cannot give."""


def split(n_cells: int, train_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: a seeded draw of `train_size` cells and all the rest, disjoint."""
    if train_size < 0:
        raise ProtocolError(f"`train_size` must be 0 or more, got {train_size}", options=["train_size"])
    if n_cells - train_size < 2:  # a rank correlation of one cell is undefined
        left = "no test cell" if train_size >= n_cells else "one test cell"
        raise ProtocolError(
            f"`train_size` {train_size} leaves {left}: only {n_cells} cells have both statistics and the label, "
            f"and rank metrics need 2 test cells; use at most {max(n_cells - 2, 0)}",
            options=["train_size"],
        )
    order = np.random.default_rng(seed).permutation(n_cells)
    return np.sort(order[:train_size]), np.sort(order[train_size:])


def carve_validation(train: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) from the training cells only: model selection never sees a test cell."""
    n_val = max(2, round(fraction * len(train)))
    if n_val >= len(train) - 1:
        raise ProtocolError(f"{len(train)} training cells are too few to carve a validation split from")
    order = np.random.default_rng([seed, 1]).permutation(len(train))
    return np.sort(train[order[n_val:]]), np.sort(train[order[:n_val]])
