"""Local task files through `datasets` (JSONL, CSV, parquet), string and ClassLabel labels."""

from __future__ import annotations

import csv
import json

import pytest

from hsearch.data import DataError, load_task
from hsearch.data.specs import TaskSource
from hsearch.data.tasks import UnseenLabelError

SPLITS = ["train", "validation", "test"]
ROWS = {
    "train": [("how many yen is a dollar", "qa_currency"), ("wake me at seven", "alarm_set"),
              ("euro to pound rate", "qa_currency"), ("will it rain today", "weather_query")],
    "validation": [("set an alarm for noon", "alarm_set"), ("is it sunny, or not", "weather_query")],
    "test": [("dollar in francs", "qa_currency")],
}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HSEARCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _jsonl(folder, rows=ROWS, text="sentence", label="intent"):
    for split, items in rows.items():
        (folder / f"{split}.jsonl").write_text("".join(json.dumps({text: t, label: y}) + "\n" for t, y in items))
    return {s: str(folder / f"{s}.jsonl") for s in rows}


def _csv(folder, rows=ROWS, text="sentence", label="intent"):
    for split, items in rows.items():
        with open(folder / f"{split}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([text, label])
            w.writerows(items)
    return {s: str(folder / f"{s}.csv") for s in rows}


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_string_labels_map_to_sorted_train_labels(tmp_path, cache, fmt):
    files = (_jsonl if fmt == "jsonl" else _csv)(tmp_path)
    task = load_task("intents", TaskSource(files=files, text_field="sentence", label_field="intent"), SPLITS, None)
    assert task.label_names == ["alarm_set", "qa_currency", "weather_query"]  # sorted, not first-seen order
    assert task.num_labels == 3
    assert task.splits["train"] == ([t for t, _ in ROWS["train"]], [1, 0, 1, 2])
    assert task.splits["validation"] == (["set an alarm for noon", "is it sunny, or not"], [0, 2])  # CSV quoting
    assert task.splits["test"][1] == [1]
    assert task.id2label == {0: "alarm_set", 1: "qa_currency", 2: "weather_query"}
    assert task.label2id["weather_query"] == 2
    # read by datasets' own builder, its Arrow copy cached under hsearch's cache root
    assert list((cache / "datasets").glob(f"{'json' if fmt == 'jsonl' else 'csv'}/*"))


def test_integer_labels_in_csv_stay_ids(tmp_path):
    rows = {"train": [("good", 1), ("bad", 0), ("fine", 2)], "validation": [("ok", 2)]}
    files = _csv(tmp_path, rows, text="text", label="label")
    task = load_task("polarity", TaskSource(files=files), ["train", "validation"], None)
    assert task.label_names is None and task.num_labels == 3
    assert task.splits["train"][1] == [1, 0, 2] and task.splits["validation"][1] == [2]


def test_a_label_not_in_train_is_a_one_line_error_naming_label_split_and_file(tmp_path):
    rows = {**ROWS, "validation": [*ROWS["validation"], ("play some jazz", "play_music")]}
    files = _jsonl(tmp_path, rows)
    with pytest.raises(UnseenLabelError) as exc:
        load_task("intents", TaskSource(files=files, text_field="sentence", label_field="intent"), SPLITS, None)
    text = str(exc.value)
    assert "\n" not in text
    assert "'play_music'" in text and "split 'validation'" in text and files["validation"] in text, text
    assert isinstance(exc.value, DataError)


def test_classlabel_column_keeps_its_own_order(tmp_path):
    import datasets

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["sadness", "joy", "anger"])})
    files = {}
    for split, labels in {"train": [1, 0, 2, 1], "validation": [2, 0]}.items():
        ds = datasets.Dataset.from_dict({"text": [f"row {i}" for i in range(len(labels))], "label": labels},
                                        features=features)
        ds.to_parquet(tmp_path / f"{split}.parquet")
        files[split] = str(tmp_path / f"{split}.parquet")
    task = load_task("feelings", TaskSource(files=files), ["train", "validation"], None)
    assert task.label_names == ["sadness", "joy", "anger"]  # the ClassLabel's order, not sorted
    assert task.splits["train"][1] == [1, 0, 2, 1] and task.splits["validation"][1] == [2, 0]


def test_missing_field_and_label_type_errors_are_one_line(tmp_path):
    files = _csv(tmp_path, {"train": [("a", "x")]}, text="sentence", label="intent")
    with pytest.raises(DataError) as exc:
        load_task("t", TaskSource(files=files, text_field="sentence", label_field="label"), ["train"], None)
    assert "no field 'label'" in str(exc.value) and files["train"] in str(exc.value) and "intent" in str(exc.value)
    path = tmp_path / "floats.jsonl"
    path.write_text('{"text": "a", "label": 0.5}\n')
    with pytest.raises(DataError) as exc:
        load_task("t", TaskSource(files={"train": str(path)}), ["train"], None)
    assert "must hold integer class ids or strings" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(DataError, match="num_labels is 5 but the train split"):
        load_task("t", TaskSource(files=_jsonl(tmp_path), text_field="sentence", label_field="intent", num_labels=5),
                  ["train"], None)


def test_string_labels_name_the_classifier_labels():
    import hsearch.model  # noqa: F401
    from _model_helpers import tiny_config

    from hsearch.data.tasks import TaskData
    from hsearch.trial.finetune import classifier_config

    named = classifier_config(tiny_config(), TaskData("t", {}, 3, "files", ["alarm_set", "qa_currency", "weather"]))
    assert named.num_labels == 3 and named.id2label == {0: "alarm_set", 1: "qa_currency", 2: "weather"}
    assert named.label2id == {"alarm_set": 0, "qa_currency": 1, "weather": 2}
    plain = classifier_config(tiny_config(), TaskData("t", {}, 4, "files"))
    assert plain.num_labels == 4 and plain.id2label[3] == "LABEL_3"


def test_txt_corpus_paragraphs_through_datasets(tmp_path):
    from hsearch.data.sources import local_records

    path = tmp_path / "doc.txt"
    path.write_bytes(b"first line\r\nsecond\r\n\r\nnext doc\r\n\r\n\r\n\r\nlast\n")
    assert list(local_records([path], "body")) == [{"body": "first line\nsecond"}, {"body": "next doc"},
                                                   {"body": "last"}]


def test_preflight_accepts_csv_tasks_with_string_labels(tmp_path):
    from hsearch.trial import load_recipe, preflight

    files = _csv(tmp_path)
    corpus = tmp_path / "corpus.csv"
    corpus.write_text("text\nfirst document\nsecond document\n")
    recipe = load_recipe("cpu-small", {"finetune.tasks": {"intents": {"files": files, "text_field": "sentence",
                                                                      "label_field": "intent"}},
                                       "corpus.files": [str(corpus)], "latency.enabled": False})
    preflight(recipe)
    bad = tmp_path / "bad.csv"
    bad.write_text("sentence\nno label column\n")
    recipe = load_recipe("cpu-small", {"finetune.tasks": {"intents": {"files": {**files, "train": str(bad)},
                                                                      "text_field": "sentence",
                                                                      "label_field": "intent"}}})
    with pytest.raises(DataError, match="no field 'intent'"):
        preflight(recipe)


def test_hub_string_labels_share_the_local_code_path(monkeypatch):
    import datasets

    import hsearch.data.tasks as tasks

    rows = {s: datasets.Dataset.from_dict({"text": [t for t, _ in r], "label": [y for _, y in r]})
            for s, r in ROWS.items()}
    rows["test"] = datasets.Dataset.from_dict({"text": ["turn it up"], "label": ["volume_up"]})
    monkeypatch.setattr(tasks, "load_hub", lambda dataset, config, split: rows[split])
    task = load_task("intents", TaskSource(dataset="someone/intents"), ["train", "validation"], None)
    assert task.label_names == ["alarm_set", "qa_currency", "weather_query"] and task.splits["validation"][1] == [0, 2]
    with pytest.raises(UnseenLabelError, match=r"label 'volume_up' in split 'test' \(dataset someone/intents\)"):
        load_task("intents", TaskSource(dataset="someone/intents"), SPLITS, None)
