"""The one minibatch loop every torch predictor trains with, and how a long fit shows it is alive.

A loop over shuffled minibatches that always ends: minibatches of one cell are skipped (a ranking loss
needs a pair), so a batch size under 2 would never step; `check_batching` refuses it before training.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from zcpipe.errors import InputError, PredictorError

LOG_EVERY_S = 30.0  # progress lines when stderr is no terminal (CI logs, scripts, cluster jobs)
FIRST_LOG_S = 5.0


class TrainingLoopError(PredictorError, InputError, ValueError):
    """Batching that cannot train: too few cells, or a batch size under 2."""


def check_batching(name: str, n_cells: int, batch_size: int) -> None:
    if batch_size < 2:
        raise TrainingLoopError(
            f"{name} ranks pairs: option batch_size must be at least 2, got {batch_size}", options=["hparams"]
        )
    if n_cells < 2:
        raise TrainingLoopError(f"{name} ranks pairs: it needs at least 2 training cells, got {n_cells}")


class FitProgress:
    """A progress bar on a terminal; elsewhere a line every LOG_EVERY_S seconds (step, loss, elapsed, ETA),
    so a fit in a CI log or a script's output says it is alive and how long it has left."""

    def __init__(self, total: int, desc: str, stream=None):
        self.total, self.desc, self.stream = total, desc, stream or sys.stderr
        self.t0 = self.last_log = time.monotonic()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = tqdm(total=total, unit="step", desc=desc, leave=False, dynamic_ncols=True, file=self.stream) \
            if self.tty else None  # fmt: skip
        self.step, self.loss = 0, float("nan")

    def update(self, loss: float) -> None:
        self.step += 1
        self.loss = loss
        if self.bar is not None:
            self.bar.update(1)
            if self.step % 20 == 0:
                self.bar.set_postfix(loss=f"{loss:.4f}")
            return
        now = time.monotonic()
        wait = FIRST_LOG_S if self.last_log == self.t0 else LOG_EVERY_S
        if now - self.last_log >= wait:
            self._line(now)
            self.last_log = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.last_log != self.t0:  # it logged: say it ended
            self._line(time.monotonic())

    def _line(self, now: float) -> None:
        elapsed = now - self.t0
        eta = elapsed / self.step * (self.total - self.step) if self.step else float("nan")
        self.stream.write(
            f"{self.desc}: step {self.step}/{self.total} ({100 * self.step / max(self.total, 1):.0f}%), "
            f"loss {self.loss:.4f}, {_clock(elapsed)} elapsed, ETA {_clock(eta)}\n"
        )
        self.stream.flush()


def _clock(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    m, s = divmod(round(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def run_steps(
    name: str,
    n_cells: int,
    batch_size: int,
    total: int,
    permutation: Callable[[], np.ndarray],
    step: Callable[[np.ndarray], float],
) -> list[float]:
    """`total` optimiser steps over shuffled minibatches of `batch_size` cells (one-cell remainders skipped):
    `permutation()` orders an epoch, `step(indices)` trains on one minibatch and returns its loss. Returns
    the losses."""
    check_batching(name, n_cells, batch_size)
    progress = FitProgress(total, f"fit {name}")
    losses: list[float] = []
    try:
        while len(losses) < total:
            order = np.asarray(permutation())
            for s in range(0, len(order), batch_size):
                idx = order[s : s + batch_size]
                if len(idx) < 2:
                    continue
                losses.append(step(idx))
                progress.update(losses[-1])
                if len(losses) >= total:
                    break
    finally:
        progress.close()
    return losses
