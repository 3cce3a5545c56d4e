"""``hsearch bench``: measured inference latency and training throughput vs Hugging Face BERT.

* :mod:`hsearch.bench.latency` — forward latency per layout and length (the shared timing loop and
  fast paths of :mod:`hsearch.model.inference`, summaries of :mod:`hsearch.trial.latency`);
* :mod:`hsearch.bench.train` — MLM training tokens/s, step time, peak memory, MFU;
* :mod:`hsearch.bench.flops` — analytic FLOPs per layout (formula in its docstring);
* :mod:`hsearch.bench.report` — tables and .md/.json files, with the hardware of
  :func:`hsearch.trial.hardware.hardware_info` (the description trials store too).

Results with their hardware live in ``analysis/bench/``.
"""
