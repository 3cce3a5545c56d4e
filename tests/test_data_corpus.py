"""Tokenizer, corpus split/packing/cache and downstream tasks, offline."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from hsearch.data import DataError, is_heldout, load_task, prepare_corpus
from hsearch.data.tokenizer import bert_base_uncased
from hsearch.data.specs import CorpusSpec, TaskSource, TokenizerSpec, TokenizerTrain

WORDS = ("the cat sat on a mat while dogs ran across fields of green grass under blue skies and "
         "birds sang songs about rivers mountains cities people music history science art").split()


def _docs(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"document {i}. " + " ".join(rng.choice(WORDS, size=int(rng.integers(40, 120)))) for i in range(n)]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HSEARCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_packaged_bert_vocab_is_bert_base_uncased():
    tok, source = bert_base_uncased(offline=True)
    assert len(tok) == 30522
    ids = tok("Héllo WORLD").input_ids  # lowercased, accent stripped
    assert ids == [101, 7592, 2088, 102]
    assert (tok.cls_token_id, tok.sep_token_id, tok.mask_token_id, tok.pad_token_id) == (101, 102, 103, 0)


def test_heldout_split_is_deterministic_by_document():
    docs = _docs(4000)
    held = [d for d in docs if is_heldout(d, 0.05)]
    assert 0.035 < len(held) / len(docs) < 0.065
    assert held == [d for d in reversed(docs) if is_heldout(d, 0.05)][::-1]  # order-independent


@pytest.mark.parametrize("fmt", ["jsonl.gz", "txt", "parquet", "csv"])
def test_local_corpus_is_packed_with_cls_sep_and_cached(tmp_path, cache, fmt):
    docs = _docs(400)
    folder = tmp_path / "corpus"
    folder.mkdir()
    if fmt == "jsonl.gz":
        with gzip.open(folder / "part-0.jsonl.gz", "wt") as fh:
            fh.writelines(json.dumps({"text": d}) + "\n" for d in docs)
    elif fmt == "txt":
        (folder / "part-0.txt").write_text("\n\n".join(docs))
    elif fmt == "csv":
        import csv

        with open(folder / "part-0.csv", "w", newline="") as fh:
            csv.writer(fh).writerows([["id", "text"], *([i, d] for i, d in enumerate(docs))])
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"text": docs}), folder / "part-0.parquet")
    spec = CorpusSpec(files=[str(folder)], eval_blocks=1000)  # room for every held-out document
    tok_spec = TokenizerSpec(train=TokenizerTrain(vocab_size=200, min_frequency=1, max_documents=100))
    first = prepare_corpus(spec, tok_spec, 32)
    assert not first.cache_hit
    tok = first.tokenizer
    assert first.train.shape[1] == 32 and len(first.heldout) >= 1
    assert (first.train[:, 0] == tok.cls_token_id).all() and (first.train[:, -1] == tok.sep_token_id).all()
    held_docs = sum(is_heldout(d, 0.05) for d in docs)
    assert first.stats["heldout_documents"] == held_docs
    assert first.stats["train_documents"] == len(docs) - held_docs
    # the text survives the round trip (up to the WordPiece normalisation)
    text = tok.decode(first.train[0, 1:-1].tolist())
    assert text.startswith("document 0.")
    second = prepare_corpus(spec, tok_spec, 32)
    assert second.cache_hit
    np.testing.assert_array_equal(first.train, second.train)
    third = prepare_corpus(spec, tok_spec, 16)  # another seq_len is another cache entry
    assert not third.cache_hit and third.train.shape[1] == 16


def test_corpus_caps_limit_tokenisation(tmp_path, cache):
    folder = tmp_path / "c"
    folder.mkdir()
    with gzip.open(folder / "a.jsonl.gz", "wt") as fh:
        fh.writelines(json.dumps({"text": d}) + "\n" for d in _docs(400))
    tok_spec = TokenizerSpec(train=TokenizerTrain(vocab_size=200, min_frequency=1, max_documents=50))
    capped = prepare_corpus(CorpusSpec(files=[str(folder)], max_tokens=32 * 10, eval_blocks=2), tok_spec, 32)
    assert len(capped.train) == 10 and len(capped.heldout) == 2
    by_docs = prepare_corpus(CorpusSpec(files=[str(folder)], max_documents=20, eval_blocks=2), tok_spec, 32)
    assert by_docs.stats["train_documents"] == 20


def test_missing_corpus_files_are_one_line_errors(tmp_path, cache):
    with pytest.raises(DataError) as exc:
        prepare_corpus(CorpusSpec(files=[str(tmp_path / "nothing" / "*.jsonl")]), TokenizerSpec(), 32)
    assert "nothing" in str(exc.value) and "\n" not in str(exc.value)
    (tmp_path / "data").mkdir()
    with pytest.raises(DataError) as exc:
        prepare_corpus(CorpusSpec(), TokenizerSpec(), 32, data_dir=tmp_path / "data")
    assert "wiki" in str(exc.value)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"body": "x"}) + "\n")
    with pytest.raises(DataError, match="no field 'text'"):
        prepare_corpus(CorpusSpec(files=[str(bad)]), TokenizerSpec(), 32)


def test_tasks_from_the_offline_layout(shared_data):
    emotion = load_task("emotion", TaskSource(), ["train", "validation", "test"], shared_data)
    assert emotion.num_labels == 6
    assert [len(emotion.splits[s][0]) for s in ("train", "validation", "test")] == [16000, 2000, 2000]
    massive = load_task("massive", TaskSource(), ["train", "validation"], shared_data)
    assert massive.num_labels == 60 and max(massive.splits["train"][1]) == 59
    with pytest.raises(DataError) as exc:
        load_task("emotion", TaskSource(), ["dev"], shared_data)
    assert "dev.jsonl" in str(exc.value)


def test_extra_task_from_files(tmp_path):
    for split, rows in {"train": [("good", 1), ("bad", 0)], "validation": [("fine", 1)], "test": [("awful", 0)]}.items():
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps({"sentence": t, "y": y}) + "\n" for t, y in rows))
    spec = TaskSource(files={s: str(tmp_path / f"{s}.jsonl") for s in ("train", "validation", "test")},
                      text_field="sentence", label_field="y")
    task = load_task("polarity", spec, ["train", "validation", "test"], None)
    assert task.num_labels == 2 and task.splits["train"] == (["good", "bad"], [1, 0])


def _write_corrupt(folder, kind):
    if kind == "not-gzip":
        path = folder / "part.jsonl.gz"
        path.write_bytes(b'{"text": "plain text under a .gz name"}\n')
        return path, "part.jsonl.gz:1: not a readable gzip file"
    if kind == "truncated-gzip":
        path = folder / "part.jsonl.gz"
        path.write_bytes(gzip.compress(b'{"text": "a document"}\n' * 500)[:60])
        return path, "not a readable gzip file (Compressed file ended"
    if kind == "not-utf8":
        path = folder / "part.jsonl"
        path.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
        return path, "part.jsonl:2: not UTF-8 text (byte 0xe9"
    if kind == "not-an-object":
        path = folder / "part.jsonl"
        path.write_text('{"text": "fine"}\n["a", "list"]\n')
        return path, "part.jsonl:2: expected a JSON object (one record per line), got list"
    if kind == "not-json":
        path = folder / "part.jsonl"
        path.write_text('{"text": "fine"}\n{"text": \n')
        return path, "part.jsonl:2: not valid JSON"
    path = folder / "part.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    return path, "part.parquet: not a readable parquet file"


@pytest.mark.parametrize("kind", ["not-gzip", "truncated-gzip", "not-utf8", "not-an-object", "not-json", "parquet"])
def test_corrupt_corpus_files_are_one_line_errors_naming_file_and_line(tmp_path, cache, kind):
    folder = tmp_path / "corpus"
    folder.mkdir()
    path, expected = _write_corrupt(folder, kind)
    tok_spec = TokenizerSpec(train=TokenizerTrain(vocab_size=200, min_frequency=1, max_documents=10))
    with pytest.raises(DataError) as exc:
        prepare_corpus(CorpusSpec(files=[str(folder)]), tok_spec, 32)
    text = str(exc.value)
    assert "\n" not in text and str(folder) in text and expected in text, text


def test_corrupt_task_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "fine", "label": 0}\n3\n')
    with pytest.raises(DataError) as exc:
        load_task("mine", TaskSource(files={"train": str(path)}), ["train"], None)
    assert f"{path}:2: expected a JSON object" in str(exc.value) and "got int" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_windows_line_ends_in_text_files(tmp_path):
    from hsearch.data.sources import iter_records

    path = tmp_path / "doc.txt"
    path.write_bytes(b"first line\r\nsecond\r\n\r\nnext doc\r\n")
    assert list(iter_records(path, "text")) == [{"text": "first line\nsecond"}, {"text": "next doc"}]
