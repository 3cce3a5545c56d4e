"""Fine-tuning the pretrained encoder on classification tasks, over several seeds."""

from __future__ import annotations

import math
import statistics
import time
from typing import Callable

import numpy as np
import torch

from hsearch.data.tasks import TaskData
from hsearch.trial.optim import lr_factor, param_groups, set_lr
from hsearch.trial.pretrain import Cancelled, Diverged
from hsearch.trial.recipe import TaskTraining
from hsearch.trial.result import TaskScore

# Caps on training/eval sets pick a fixed random subset (independent of the fine-tune seed),
# so every trial of a study is scored on the same examples.
_SUBSET_SEED = 0


def _subset(n: int, cap: int | None) -> np.ndarray:
    if cap is None or cap >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(_SUBSET_SEED).permutation(n)[:cap])


def _encode(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    return tokenizer(texts, truncation=True, max_length=max_length, add_special_tokens=True)["input_ids"]


def _pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


@torch.no_grad()
def _bucketed_batches(lengths: list[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar length (sorted within windows of 50 batches): far less
    padding than random batches, still a random order for SGD."""
    order = rng.permutation(len(lengths))
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start:start + window]
        chunk = chunk[np.argsort([lengths[i] for i in chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def accuracy(model, seqs: list[list[int]], labels: list[int], *, pad_id: int, batch_size: int,
             device: torch.device, autocast_dtype: torch.dtype | None) -> float:
    model.eval()
    correct = 0
    order = np.argsort([len(s) for s in seqs])  # length-sorted batches: less padding
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        ids, mask = _pad([seqs[i] for i in idx], pad_id)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        pred = logits.argmax(-1).cpu()
        correct += int((pred == torch.tensor([labels[i] for i in idx])).sum())
    return correct / len(seqs)


def classifier_config(config, task: TaskData):
    """The fine-tuned classifier's config: the encoder's, with the task's number of classes and,
    when its labels have names (string or ClassLabel labels), ``id2label``/``label2id``."""
    base = {k: v for k, v in config.to_dict().items() if k not in ("id2label", "label2id", "num_labels")}
    if task.label_names is not None:
        return config.__class__.from_dict({**base, "id2label": task.id2label, "label2id": task.label2id})
    return config.__class__.from_dict({**base, "num_labels": task.num_labels})


def finetune_task(encoder, config, tokenizer, task: TaskData, opts: TaskTraining, *, score_split: str, report_split: str,
                  seeds: list[int], device: torch.device, autocast_dtype: torch.dtype | None,
                  progress: Callable[[dict], None], should_stop: Callable[[], bool]) -> TaskScore:
    """Fine-tune a fresh classifier on top of ``encoder`` (a HybridBertModel's weights) per seed."""
    from hsearch.model import HybridBertForSequenceClassification

    max_len = opts.max_length
    tr_texts, tr_labels = task.splits["train"]
    keep = _subset(len(tr_texts), opts.max_train_examples)
    train_seqs = _encode(tokenizer, [tr_texts[i] for i in keep], max_len)
    train_labels = [tr_labels[i] for i in keep]
    lengths = [len(s) for s in train_seqs]
    evals = {}
    for split in (score_split, report_split):
        texts, labels = task.splits[split]
        sel = _subset(len(texts), opts.max_eval_examples)
        evals[split] = (_encode(tokenizer, [texts[i] for i in sel], max_len), [labels[i] for i in sel])
    encoder_state = {k: v.detach().clone() for k, v in encoder.state_dict().items()}
    cls_config = classifier_config(config, task)
    bs, epochs = opts.batch_size, opts.epochs
    steps_per_epoch = math.ceil(len(train_seqs) / bs)
    total_steps = max(1, math.ceil(steps_per_epoch * epochs))
    scores, reports = [], []
    for seed in seeds:
        torch.manual_seed(seed)
        model = HybridBertForSequenceClassification(cls_config)
        missing, unexpected = model.bert.load_state_dict(encoder_state, strict=False)
        if unexpected or any(not k.startswith("pooler.") for k in missing):
            raise RuntimeError(f"encoder weights do not fit the classifier: missing {missing}, unexpected {unexpected}")
        model.to(device).train()
        opt = torch.optim.AdamW(param_groups(model, opts.weight_decay), lr=opts.lr)
        rng = np.random.default_rng(seed)
        step = 0
        t0 = time.perf_counter()
        while step < total_steps:
            for idx in _bucketed_batches(lengths, bs, rng):
                if step >= total_steps:
                    break
                if should_stop():
                    raise Cancelled("stopped by the caller")
                # The pretraining schedule, driven by the fraction of steps: linear warm-up over
                # warmup_ratio of them, then linear decay to zero at the last step.
                set_lr(opt, opts.lr * lr_factor(step / total_steps, warmup=opts.warmup_ratio, schedule="linear"))
                ids, mask = _pad([train_seqs[i] for i in idx], tokenizer.pad_token_id)
                labels = torch.tensor([train_labels[i] for i in idx], device=device)
                with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
                loss = torch.nn.functional.cross_entropy(logits.float(), labels)
                if not torch.isfinite(loss):
                    raise Diverged(f"fine-tuning {task.name} (seed {seed}): loss became {loss.item()} at step {step}")
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                opt.zero_grad(set_to_none=True)
                step += 1
                if step % 20 == 0 or step == total_steps:
                    progress({"phase": "finetune", "task": task.name, "seed": seed, "step": step,
                              "steps": total_steps, "loss": loss.item(), "seconds": time.perf_counter() - t0})
        acc = {split: accuracy(model, seqs, labels, pad_id=tokenizer.pad_token_id, batch_size=max(bs, 64),
                               device=device, autocast_dtype=autocast_dtype)
               for split, (seqs, labels) in evals.items()}
        scores.append(acc[score_split])
        reports.append(acc[report_split])
        progress({"phase": "finetune", "task": task.name, "seed": seed, "accuracy": acc[score_split]})
        del model, opt
    sd = (lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0)
    return TaskScore(name=task.name, score_split=score_split, report_split=report_split,
                     score_mean=statistics.fmean(scores), score_std=sd(scores),
                     report_mean=statistics.fmean(reports), report_std=sd(reports),
                     num_classes=task.num_labels, train_examples=len(train_seqs), seeds=list(seeds),
                     score_per_seed=scores, report_per_seed=reports)
