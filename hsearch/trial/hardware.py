"""What a result was measured on: a time budget or a latency means nothing without it.

One description, :func:`hardware_info`, for trials (stored on every trial) and for
``hsearch bench`` reports, with one key set:

* ``device`` (``cpu`` / ``cuda``), ``device_name`` (GPU name, else the CPU model), ``cpu``
  (CPU model), ``cpu_count`` (logical CPUs), ``cpu_bf16`` (native bf16 matrix instructions),
  ``threads`` (torch intra-op threads of the measurement);
* ``torch``, ``transformers``, ``python``, ``platform`` versions, ``gemm`` (matrix-product
  libraries of this torch build);
* ``precision`` when the caller names one (trials: the pretraining precision);
* on CUDA: ``cuda``, ``gpu_memory_gb``, ``gpu_multiprocessors``.
"""

from __future__ import annotations

import os
import platform
import re
from typing import Any

import torch


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def pick_device(requested: str | None) -> torch.device:
    if requested in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def _build_setting(config: str, key: str) -> str | None:
    match = re.search(rf"{key}=([^,\s]+)", config)
    return match.group(1) if match else None


def gemm_backend() -> dict[str, Any]:
    """Which libraries torch uses for matrix products on this build and machine."""
    config = torch.__config__.show()
    onednn = re.search(r"(?:MKL-DNN|oneDNN)\s+v?([\d.]+)", config)
    info: dict[str, Any] = {
        "blas": _build_setting(config, "BLAS_INFO"),
        "mkl": torch.backends.mkl.is_available(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "onednn_version": onednn.group(1) if onednn else None,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if torch.cuda.is_available():
        info["cublas"] = True
        info["cudnn"] = torch.backends.cudnn.version()
        info["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
    return info


def hardware_info(device: str | torch.device = "cpu", *, precision: str | None = None,
                  threads: int | None = None) -> dict[str, Any]:
    """A JSON-able description of the machine and software (keys in the module docstring).

    ``threads`` defaults to torch's current intra-op thread count.
    """
    import transformers

    from hsearch.model.inference import cpu_has_native_bf16

    dev = torch.device(device)
    cuda = dev.type == "cuda" and torch.cuda.is_available()
    info: dict[str, Any] = {
        "device": dev.type,
        "device_name": torch.cuda.get_device_name(dev) if cuda else cpu_model(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_bf16": cpu_has_native_bf16(),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gemm": gemm_backend(),
    }
    if precision is not None:
        info["precision"] = precision
    if cuda:
        props = torch.cuda.get_device_properties(dev)
        info.update(cuda=torch.version.cuda, gpu_memory_gb=round(props.total_memory / 2**30, 1),
                    gpu_multiprocessors=props.multi_processor_count)
    return info
