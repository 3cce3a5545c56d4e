"""hsearch: search the attention layout of BERT-style encoders under a compute budget.

``import hsearch`` is light (no torch), so the command line starts fast. The model family
lives in :mod:`hsearch.model`; importing it registers the classes with the
``transformers`` Auto classes, so exported models load with
``AutoModelForMaskedLM.from_pretrained`` without ``trust_remote_code``::

    import hsearch.model  # registers model_type "hybrid-bert"
"""

from hsearch.errors import HsearchError
from hsearch.layout import PRESETS, Layout, LayoutError, resolve

__version__ = "0.1.0"
__all__ = ["HsearchError", "Layout", "LayoutError", "PRESETS", "resolve", "__version__"]
