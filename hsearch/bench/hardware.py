"""What a benchmark ran on: CPU/GPU model, threads, library versions, GEMM backend."""

from __future__ import annotations

import os
import platform
import re
from typing import Any

import torch

from hsearch.model.inference import cpu_has_native_bf16
from hsearch.trial.hardware import cpu_model


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


def hardware_info(device: str | torch.device = "cpu", threads: int | None = None) -> dict[str, Any]:
    """A JSON-able description of the machine and software a measurement ran on."""
    import transformers

    info: dict[str, Any] = {
        "device": str(torch.device(device)),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_bf16": cpu_has_native_bf16(),
        "torch_threads": threads if threads is not None else torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gemm": gemm_backend(),
    }
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        info.update(
            gpu_model=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            gpu_multiprocessors=props.multi_processor_count,
            cuda=torch.version.cuda,
        )
    return info


def hardware_lines(hw: dict[str, Any]) -> list[str]:
    """Markdown bullet lines for a report."""
    gemm = hw.get("gemm", {})
    lines = []
    if "gpu_model" in hw:
        lines.append(f"- GPU: {hw['gpu_model']} ({hw['gpu_memory_gib']} GiB, {hw['gpu_multiprocessors']} SMs), "
                     f"CUDA {hw['cuda']}, cuDNN {gemm.get('cudnn')}")
    lines += [
        f"- CPU: {hw['cpu_model']}, {hw['cpu_count']} logical CPUs, torch threads {hw['torch_threads']}, "
        f"native bf16: {'yes' if hw['cpu_bf16'] else 'no'}",
        f"- torch {hw['torch']}, transformers {hw['transformers']}, Python {hw['python']}",
        f"- GEMM backend: BLAS={gemm.get('blas')}, MKL={gemm.get('mkl')}, oneDNN(mkldnn)={gemm.get('mkldnn')} "
        f"v{gemm.get('onednn_version')}, CPU capability {gemm.get('cpu_capability')}",
        f"- platform: {hw['platform']}",
    ]
    return lines
