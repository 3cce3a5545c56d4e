"""``hsearch bench``: measured inference latency and training throughput vs Hugging Face BERT.

* :mod:`hsearch.bench.latency` — forward latency per layout and length (shared timing code in
  :mod:`hsearch.trial.latency`, fast paths in :mod:`hsearch.model.inference`);
* :mod:`hsearch.bench.train` — MLM training tokens/s, step time, peak memory, MFU;
* :mod:`hsearch.bench.flops` — analytic FLOPs per layout (formula in its docstring);
* :mod:`hsearch.bench.report` — tables and .md/.json files, with the hardware of
  :func:`hsearch.trial.hardware.hardware_info` (the description trials store too).

Results with their hardware live in ``analysis/bench/``.
"""
