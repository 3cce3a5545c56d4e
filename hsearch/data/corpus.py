"""Pretraining corpus -> held-out split by document -> tokenised, packed, cached blocks.

Blocks are ``[CLS] t1 … t(L-2) [SEP]`` cut from the stream of documents joined by [SEP].
The held-out split takes whole documents whose text hash falls under ``heldout_fraction``
(deterministic and independent of file order). The packed arrays are cached as ``.npy``
under the cache root, keyed by tokenizer + corpus + seq_len + caps, and memory-mapped on
reuse, so the second trial of a study starts training in seconds.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from hsearch.data.cache import cache_key, cache_root
from hsearch.data.sources import DataError, check_fields, field_of, corpus_files, iter_dataset, load_hub, local_records
from hsearch.data.specs import CorpusSpec, TokenizerSpec
from hsearch.data.tokenizer import fingerprint, load_tokenizer

PACK_VERSION = "pack-v1"
_BATCH_DOCS = 128


@dataclass
class PackedCorpus:
    train: np.ndarray  # [blocks, seq_len] token ids
    heldout: np.ndarray  # [blocks, seq_len]
    tokenizer: Any
    tokenizer_source: str
    cache_hit: bool
    prep_seconds: float
    cache_dir: Path
    stats: dict[str, Any] = field(default_factory=dict)


def is_heldout(text: str, fraction: float) -> bool:
    """Deterministic per-document split: the first 8 bytes of SHA-1(text) as a fraction of 2^64."""
    h = int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")
    return h < fraction * 2**64


class CorpusSource:
    """Documents of a corpus in a fixed order, from local files or the Hub."""

    def __init__(self, spec: CorpusSpec, data_dir: str | Path | None):
        self.spec = spec
        self.text_field = spec.text_field
        self.files = corpus_files(spec, data_dir)
        self.offline = self.files is not None

    @property
    def identity(self) -> dict[str, Any]:
        """What the cache key needs: file names, sizes and mtimes, or the hub coordinates."""
        if self.files is not None:
            return {"files": [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in self.files],
                    "text_field": self.text_field}
        s = self.spec
        return {"dataset": s.dataset, "config": s.config, "split": s.split, "text_field": s.text_field}

    @property
    def description(self) -> str:
        if self.files is not None:
            return f"{len(self.files)} local files ({self.files[0].parent})"
        return f"hub {self.spec.dataset}/{self.spec.config or ''}:{self.spec.split}"

    def texts(self) -> Iterator[str]:
        """Non-empty document texts in a fixed order. Local files and the Hub both load through
        ``datasets``; with a cap on documents or tokens they stream (reading only what is packed),
        else they are read whole (local files: converted once, memory-mapped on reuse)."""
        s = self.spec
        capped = s.max_documents is not None or s.max_tokens is not None
        if self.files is not None:
            records = local_records(self.files, self.text_field, streaming=capped)
            where = f"{len(self.files)} local files" if len(self.files) > 1 else str(self.files[0])
        else:
            ds = load_hub(s.dataset, s.config, s.split, streaming=capped)
            where = f"dataset {s.dataset}"
            check_fields(ds, [self.text_field], where)
            records = iter_dataset(ds)
        for rec in records:
            text = field_of(rec, self.text_field, where)
            if isinstance(text, str) and text.strip():
                yield text

    def train_texts(self) -> Iterator[str]:
        f = self.spec.heldout_fraction
        return (t for t in self.texts() if not is_heldout(t, f))


class _Packer:
    """Accumulates token streams into fixed blocks of ``seq_len``."""

    def __init__(self, seq_len: int, cls_id: int, sep_id: int, max_blocks: int | None):
        self.body = seq_len - 2
        self.cls, self.sep = cls_id, sep_id
        self.max_blocks = max_blocks
        self.buffer: list[int] = []
        self.blocks: list[np.ndarray] = []

    @property
    def full(self) -> bool:
        return self.max_blocks is not None and len(self.blocks) >= self.max_blocks

    def add(self, ids: list[int]) -> None:
        self.buffer.extend(ids)
        self.buffer.append(self.sep)
        while len(self.buffer) >= self.body and not self.full:
            chunk = self.buffer[: self.body]
            del self.buffer[: self.body]
            self.blocks.append(np.asarray([self.cls, *chunk, self.sep], dtype=np.int64))
        if self.full:
            self.buffer.clear()

    def array(self, dtype) -> np.ndarray:
        if not self.blocks:
            return np.zeros((0, self.body + 2), dtype=dtype)
        return np.stack(self.blocks).astype(dtype)


def prepare_corpus(
    corpus_spec: CorpusSpec,
    tokenizer_spec: TokenizerSpec,
    seq_len: int,
    *,
    data_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> PackedCorpus:
    """Tokenizer + packed train/held-out blocks, from the cache when possible."""
    log = log or (lambda msg: None)
    start = time.perf_counter()
    source = CorpusSource(corpus_spec, data_dir)
    corpus_id = cache_key(source.identity, corpus_spec.heldout_fraction)
    tok_docs = tokenizer_spec.train.max_documents if tokenizer_spec.train is not None else 0
    tokenizer, tok_source = load_tokenizer(
        tokenizer_spec, corpus_id=corpus_id, offline=source.offline,
        training_texts=lambda: itertools.islice(source.train_texts(), tok_docs),
    )
    s = corpus_spec
    key = cache_key(PACK_VERSION, fingerprint(tokenizer), corpus_id, seq_len,
                    s.max_documents, s.max_tokens, s.eval_blocks)
    folder = cache_root() / "corpora" / key
    if (folder / "meta.json").is_file():
        train = np.load(folder / "train.npy", mmap_mode="r")
        heldout = np.load(folder / "heldout.npy", mmap_mode="r")
        stats = json.loads((folder / "meta.json").read_text())
        log(f"tokenised corpus from cache {folder}")
        return PackedCorpus(train, heldout, tokenizer, tok_source, True, time.perf_counter() - start, folder, stats)

    log(f"tokenising {source.description} into blocks of {seq_len}")
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    train_cap = None if s.max_tokens is None else max(1, s.max_tokens // seq_len)
    train_p = _Packer(seq_len, cls_id, sep_id, train_cap)
    held_p = _Packer(seq_len, cls_id, sep_id, s.eval_blocks)
    backend = tokenizer.backend_tokenizer
    docs = {"train": 0, "heldout": 0}

    def train_done() -> bool:
        return train_p.full or (s.max_documents is not None and docs["train"] >= s.max_documents)

    batch: list[tuple[bool, str]] = []

    def flush() -> None:
        wanted = [(h, t) for h, t in batch if (held_p if h else train_p).full is False]
        encs = backend.encode_batch([t for _, t in wanted], add_special_tokens=False)
        for (h, _), enc in zip(wanted, encs):
            (held_p if h else train_p).add(enc.ids)
        batch.clear()

    for text in source.texts():
        held = is_heldout(text, s.heldout_fraction)
        if held:
            if held_p.full:
                continue
            docs["heldout"] += 1
        else:
            if train_done():
                if held_p.full:
                    break
                continue
            docs["train"] += 1
        batch.append((held, text))
        if len(batch) >= _BATCH_DOCS:
            flush()
    flush()
    dtype = np.uint16 if len(tokenizer) <= np.iinfo(np.uint16).max else np.int32
    train, heldout = train_p.array(dtype), held_p.array(dtype)
    if len(train) == 0:
        raise DataError(f"corpus {source.description} gave no training block of {seq_len} tokens")
    if len(heldout) == 0:
        raise DataError(f"corpus {source.description} gave no held-out block (too few documents for a "
                        f"{s.heldout_fraction:.0%} split)")
    stats = {"source": source.description, "train_documents": docs["train"], "heldout_documents": docs["heldout"],
             "train_blocks": int(len(train)), "heldout_blocks": int(len(heldout)), "seq_len": seq_len,
             "tokenizer_source": tok_source, "vocab_size": len(tokenizer),
             "tokenise_seconds": round(time.perf_counter() - start, 3)}
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    np.save(tmp / "train.npy", train)
    np.save(tmp / "heldout.npy", heldout)
    (tmp / "meta.json").write_text(json.dumps(stats, indent=1))
    try:
        tmp.rename(folder)
    except OSError:  # a concurrent trial finished first; its copy is identical
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"cached {len(train)} training and {len(heldout)} held-out blocks in {folder}")
    return PackedCorpus(train, heldout, tokenizer, tok_source, False, time.perf_counter() - start, folder, stats)
