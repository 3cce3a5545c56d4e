"""Check that every inference path gives the plain path's outputs (run on the GPU machine, where
compiling is quick; the CPU unit tests cover the eager paths only, since Inductor on 2 shared
cores takes over a minute).

    PYTHONPATH=. python3 analysis/bench/check_paths.py [cuda|cpu]
"""

from __future__ import annotations

import sys

import torch

from hsearch.model import HybridBertConfig, HybridBertModel
from hsearch.model.inference import auto_candidates, available_paths, prepare_for_inference, random_inputs

device = sys.argv[1] if len(sys.argv) > 1 else ("cuda" if torch.cuda.is_available() else "cpu")
torch.manual_seed(0)
model = HybridBertModel(HybridBertConfig.from_layout("SSALSALA:sub", hidden_size=256, num_attention_heads=4,
                                                     intermediate_size=1024, local_window=32),
                        add_pooling_layer=False).eval().to(device)
inputs = random_inputs(model, 128, 2, device)
with torch.inference_mode():
    plain = model(**inputs).last_hidden_state.float().clone()
    for path in available_paths(device):
        out = prepare_for_inference(model, device, path=path).forward(**inputs).last_hidden_state.float().clone()
        rel = float((out - plain).norm() / plain.norm())
        print(f"{device} {path:14s} rel. error vs fp32-eager: {rel:.2e}  finite: {bool(torch.isfinite(out).all())}")
    auto = prepare_for_inference(model, device, seq_len=128, batch_size=2)
    print(f"auto candidates {auto_candidates(device)} -> {auto.path}; timings ms {auto.candidates_ms}")
