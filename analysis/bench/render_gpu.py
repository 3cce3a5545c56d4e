"""Render the GPU result JSONs (analysis/bench/gpu-h100/*.json) as Markdown sections.

    python analysis/bench/render_gpu.py > analysis/bench/gpu-h100-tables.md
"""

import json
import sys
from pathlib import Path

from hsearch.bench.report import to_markdown

ORDER = ["train128", "train128c", "train128c_b256", "train512", "train512c", "lat_cuda", "lat_cuda_compile",
         "lat_cuda_compile2"]
folder = Path(__file__).parent / "gpu-h100"
out = ["# H100 benchmark tables (rendered from analysis/bench/gpu-h100/*.json)", ""]
for name in ORDER:
    report = json.loads((folder / f"{name}.json").read_text())
    command = report.get("command", "").replace("/root/out/", "")
    out += [f"## {name}.json", "", to_markdown(report, command, raw=False, level=3)]
sys.stdout.write("\n".join(out))
