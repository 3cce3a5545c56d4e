"""hsearch: search the attention layout of BERT-style encoders under a compute budget.

Importing the package registers the hybrid model family with the ``transformers`` Auto
classes, so exported models load with ``AutoModelForMaskedLM.from_pretrained`` without
``trust_remote_code``.
"""

from hsearch import model  # noqa: F401  (registers the Auto classes)
from hsearch.errors import HsearchError
from hsearch.layout import PRESETS, Layout, LayoutError, resolve

__version__ = "0.1.0"
__all__ = ["HsearchError", "Layout", "LayoutError", "PRESETS", "resolve", "__version__"]
