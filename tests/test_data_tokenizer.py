"""A WordPiece vocabulary trained on the same texts is the same in every process."""

from __future__ import annotations

import json
import subprocess
import sys

CODE = """
import itertools, json, sys
from hsearch.data.tokenizer import train_wordpiece
texts = json.load(open(sys.argv[1]))
print(json.dumps(train_wordpiece(texts, 600, 2).get_vocab(), sort_keys=True))
"""


def test_trained_vocabulary_is_the_same_in_every_process(shared_data, tmp_path):
    # tokenizers numbers its "##" tokens in hash-map order, different in each process
    # (huggingface/tokenizers#1794); hsearch re-numbers them, so fresh processes must agree.
    from hsearch.data.corpus import CorpusSource
    from hsearch.trial import load_recipe

    source = CorpusSource(load_recipe("cpu-small").corpus, shared_data)
    texts = [t for _, t in zip(range(30), source.train_texts())]
    path = tmp_path / "texts.json"
    path.write_text(json.dumps(texts))
    vocabs = [json.loads(subprocess.run([sys.executable, "-c", CODE, str(path)], capture_output=True, text=True,
                                        check=True, timeout=120).stdout) for _ in range(3)]
    assert len(vocabs[0]) == 600
    assert vocabs[0] == vocabs[1] == vocabs[2]
    assert [vocabs[0][t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 1, 2, 3, 4]
