"""Turning stored statistics into model inputs. Missing values become 0 only beside a mask channel."""

from __future__ import annotations

import numpy as np

from zcpipe.store.tensor_reader import TrainingDataError, TrainingSet

TRANSFORMS = ("none", "log")
ALIGNMENTS = ("slot", "position")


def _signed_log(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.log1p(np.abs(v))


def require_proxies(data: TrainingSet, proxies: list[str]) -> None:
    """TrainingDataError, saying what there is, unless `data` holds every one of `proxies` node-wise."""
    missing = [p for p in proxies if p not in data.proxies]
    if missing:
        raise TrainingDataError(
            f"node-wise proxies {', '.join(missing)} are not in this configuration's tensors; it has: "
            f"{', '.join(data.proxies)} (choose them with the predictor option proxies=a,b,c, or ingest `proxies`)",
            options=["proxies"],
        )


def nodewise_input(data: TrainingSet, proxies: list[str], transform: str = "none", align: str = "slot") -> np.ndarray:
    """[A, P+1, S] float32: for each proxy, its node vector min-max normalised within each architecture
    over the slots the architecture has (ParZC's encoding); then a mask channel, 1 where the slot is
    present and every chosen proxy has a value there. Absent or missing entries are 0 in the proxy
    channels. `transform="log"` takes a signed log first (synflow spans 1e0..1e50 inside one network).
    `align="position"` packs each architecture's layers to the front in depth-first order, as the
    public ParZC code pads them: column i is then "the i-th layer", whatever layer that is."""
    if align not in ALIGNMENTS:
        raise ValueError(f"align {align!r}: choose one of {', '.join(ALIGNMENTS)}")
    if transform not in TRANSFORMS:
        raise ValueError(f"transform {transform!r}: choose one of {', '.join(TRANSFORMS)}")
    require_proxies(data, proxies)
    values = data.nodewise[:, [data.proxies.index(p) for p in proxies], :]
    if transform == "log":
        values = _signed_log(values)
    valid = data.mask & np.isfinite(values).all(axis=1)  # [A, S]
    v = np.where(valid[:, None, :], values, np.nan)
    lo = np.nanmin(np.where(valid[:, None, :], v, np.inf), axis=2, keepdims=True)
    hi = np.nanmax(np.where(valid[:, None, :], v, -np.inf), axis=2, keepdims=True)
    span = hi - lo
    # A proxy constant over an architecture's layers carries no profile: it encodes as 0.
    norm = np.where(span > 0, (v - lo) / np.where(span > 0, span, 1.0), 0.0)
    norm = np.where(valid[:, None, :], norm, 0.0)
    out = np.concatenate([norm, valid[:, None, :].astype(np.float64)], axis=1).astype(np.float32)
    if align == "position":
        # a stable sort of "absent" puts each architecture's present slots first, in slot order
        order = np.argsort(~data.mask, axis=1, kind="stable")
        out = np.take_along_axis(out, order[:, None, :], axis=2)
    return out


def scalar_input(data: TrainingSet, names: list[str]) -> np.ndarray:
    """[A, Q] float64 of whole-network values on a signed log scale (monotone; NaN kept for trees)."""
    return _signed_log(np.stack([data.scalar(n) for n in names], axis=1))
