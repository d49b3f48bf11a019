"""Failpoints: named places where a test can make a real worker process fail, once.

`ZCPIPE_FAILPOINTS="device-fault=/tmp/x/marker"` makes the first `hit("device-fault")` in any
process raise the error that failpoint stands for and create the marker file; later hits (a
restarted worker, another actor) find the marker and pass. `hold(name, key)` instead waits while
`key` is not listed in the failpoint's file, so a test decides which units of work may finish
before it kills a run. The fault-handling tests run real ingests and sweeps through real Ray this
way; nothing is patched. Unset, each costs a dict lookup.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from zcpipe.settings import FAILPOINTS_ENV as ENV


def _raise_device_fault() -> None:
    # What torch raises for a sticky CUDA error (illegal memory access, device-side assert).
    error = getattr(torch, "AcceleratorError", RuntimeError)
    raise error("CUDA error: an illegal memory access was encountered (injected by failpoint device-fault)")


def _raise_out_of_memory() -> None:
    # What torch raises when the caching allocator cannot place a tensor.
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected by failpoint batched-oom)")


_ACTIONS = {"device-fault": _raise_device_fault, "batched-oom": _raise_out_of_memory}


def _armed() -> dict[str, str]:
    spec = os.environ.get(ENV, "")
    pairs = (item.split("=", 1) for item in spec.split(",") if "=" in item)
    return {name.strip(): marker.strip() for name, marker in pairs}


def hold(name: str, key: str, timeout_s: float = 600.0) -> None:
    """Wait (at most `timeout_s`) until `key` is a line of the armed failpoint's file."""
    listing = _armed().get(name)
    if not listing:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        path = Path(listing)
        if path.exists() and key in path.read_text().split():
            return
        time.sleep(0.2)


def hit(name: str) -> None:
    """Fail here once if the failpoint `name` is armed and its marker file does not exist yet."""
    marker = _armed().get(name)
    if not marker:
        return
    try:
        Path(marker).touch(exist_ok=False)  # atomic: exactly one process fires
    except FileExistsError:
        return
    _ACTIONS[name]()
