"""The cost model: what each part of a model costs on a machine, and what a layout will cost.

``hsearch.cost.table`` (pure Python) holds a measured table and its predictions;
``hsearch.cost.protocol`` the timing statistics every measurement shares. The measurement
itself builds models and takes training steps, so it lives in ``hsearch.trial.costing``.
Below ``trial/`` and ``search/``, above ``model/``.
"""
