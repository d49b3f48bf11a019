"""What the engine and worker need to know about the device they compute on.

- Precision: on CUDA, float32 convolutions and matmuls run in IEEE float32, not TF32. Hopper
  and Blackwell run cuDNN convolutions in TF32 by default, which moves every value by ~1e-3
  and flips NASWOT codes near zero; the values would no longer describe the float32 network.
- Out of memory: torch's `OutOfMemoryError` and the cuDNN/cuBLAS allocation failures that reach
  Python as plain `RuntimeError`s are one kind of error (split the batch and go on).
- Device faults: a CUDA error such as an illegal memory access leaves the process's CUDA context
  unusable ("sticky"); every later kernel fails too. Such a fault is not an architecture's
  failure but the worker's, so it is raised as `DeviceFault` for the caller to end the process.
"""

from __future__ import annotations

import os

import torch

# Messages of allocation failures that torch reports as RuntimeError, not OutOfMemoryError.
_ALLOC_FAILURES = ("CUDNN_STATUS_ALLOC_FAILED", "CUBLAS_STATUS_ALLOC_FAILED", "CUDA out of memory")
# Older torch raises sticky CUDA faults as RuntimeError("CUDA error: ..."); newer ones as AcceleratorError.
_FAULT_PREFIXES = ("CUDA error:", "CUDA driver error:")
_ACCELERATOR_ERROR: type[BaseException] | None = getattr(torch, "AcceleratorError", None)


class DeviceFault(RuntimeError):
    """The device failed in a way that poisons this process (a sticky CUDA error); restart the worker."""


def precision_label(device: torch.device | str) -> str:
    """How float32 is computed on `device`: part of the value configuration of a GPU run."""
    return "fp32-ieee" if torch.device(device).type == "cuda" else "fp32"


def configure_precision(device: torch.device | str) -> str:
    """Make float32 mean IEEE float32 on CUDA (no TF32 in cuDNN convolutions or cuBLAS matmuls)."""
    if torch.device(device).type != "cuda":
        return precision_label(device)
    if hasattr(torch.backends.cudnn, "conv") and hasattr(torch.backends.cudnn.conv, "fp32_precision"):
        # torch >= 2.9: the per-backend settings; the legacy allow_tf32 flags must not be mixed with them.
        torch.backends.cudnn.conv.fp32_precision = "ieee"
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    else:  # pragma: no cover - torch < 2.9
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    return precision_label(device)


def precision_settings() -> dict[str, str]:
    """The float32 settings in force, for the device check's report."""
    out = {}
    if hasattr(torch.backends.cudnn, "conv") and hasattr(torch.backends.cudnn.conv, "fp32_precision"):
        out["cudnn.conv"] = torch.backends.cudnn.conv.fp32_precision
        out["cuda.matmul"] = torch.backends.cuda.matmul.fp32_precision
    else:  # pragma: no cover - torch < 2.9
        out["cudnn.allow_tf32"] = str(torch.backends.cudnn.allow_tf32)
        out["cuda.matmul.allow_tf32"] = str(torch.backends.cuda.matmul.allow_tf32)
    return out


def synchronize(device: torch.device | str) -> None:
    """Wait for the device's queued kernels, so a host timer measures them (a no-op on CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def is_out_of_memory(error: BaseException) -> bool:
    """True for every way an allocation failure reaches Python."""
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(error, RuntimeError) and any(s in str(error) for s in _ALLOC_FAILURES)


def is_device_fault(error: BaseException) -> bool:
    """True for a CUDA error that leaves the context unusable (not an out-of-memory error)."""
    if isinstance(error, DeviceFault):
        return True
    if is_out_of_memory(error):
        return False
    if _ACCELERATOR_ERROR is not None and isinstance(error, _ACCELERATOR_ERROR):
        return True
    return isinstance(error, RuntimeError) and str(error).startswith(_FAULT_PREFIXES)


def release_cached_memory(device: torch.device | str) -> None:
    """Hand the caching allocator's free blocks back, after the failed pass's tensors are gone.

    Call it outside the `except` block that caught an out-of-memory error: inside it the
    traceback still references the failed pass's frames and so its tensors.
    """
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


def memory_bytes(device: torch.device | str) -> tuple[float, float]:
    """(free, total) memory of `device`: the GPU's as CUDA reports them; on the CPU, what the OS says is
    available and the physical memory."""
    device = torch.device(device)
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        return float(free), float(total)
    page = os.sysconf("SC_PAGE_SIZE")
    return float(os.sysconf("SC_AVPHYS_PAGES") * page), float(os.sysconf("SC_PHYS_PAGES") * page)


def share_of_memory(device: torch.device | str, share: int) -> float:
    """The bytes one of `share` processes on `device` may plan for: 80 % (the caching allocator keeps
    some) of the smaller of the free memory and its part of the total. The part matters when the
    processes start together: each sees nearly all memory free, and each taking it all would leave all
    of them out of memory."""
    free, total = memory_bytes(device)
    return 0.8 * min(free, total / max(1, share))


MPS_PIPE_DEFAULT = "/tmp/nvidia-mps"


def mps_running() -> bool:
    """Whether a CUDA MPS control daemon serves this process: its control pipe exists where the CUDA
    driver looks for it (`CUDA_MPS_PIPE_DIRECTORY`, /tmp/nvidia-mps by default; the NVIDIA device
    plugin's MPS sharing sets the variable in the pod)."""
    pipe = os.environ.get("CUDA_MPS_PIPE_DIRECTORY", MPS_PIPE_DEFAULT)
    return os.path.exists(os.path.join(pipe, "control"))


def sharing_note(actors_per_gpu: int, device: str) -> str | None:
    """A one-line warning when several actors share a GPU without MPS (they time-slice, not overlap)."""
    if actors_per_gpu <= 1 or torch.device(device).type != "cuda" or mps_running():
        return None
    return (
        f"{actors_per_gpu} actors share each GPU but no CUDA MPS daemon runs on this node, so they take turns "
        "instead of overlapping: start one with `nvidia-cuda-mps-control -d` (docs/clusters.md, "
        "'Several actors per GPU'), or use --actors-per-gpu 1 (the batched path fills one GPU alone)"
    )
