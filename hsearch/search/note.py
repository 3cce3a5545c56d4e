"""A trial's note on its optuna-dashboard page: what a person wants to see first.

optuna-dashboard lists a trial's twelve layer parameters and user attrs as flat key/value
lists; the note (Markdown, rendered at the top of the trial's page) puts first the layout
string and a strip of its layers, the fine-tuning scores with their seed spread, MLM accuracy,
latency (the objective and the measured one), tokens seen, the multi-fidelity rungs, and why
the trial failed or stopped.

* :func:`trial_note` builds the text from a FrozenTrial (pure).
* :func:`write_note` writes it on one trial (the driver, after each result);
  :func:`write_notes` on every finished trial of a study (``hsearch dashboard`` at start).

Notes are stored the way optuna-dashboard stores them (study system attrs, via
``optuna_dashboard.save_note``), so any storage works, a finished trial too. hsearch rewrites
only a note it wrote itself (the hash of what it wrote is kept as the study system attr
``hsearch:note_sha:<trial id>``): a note a person edited in the dashboard is left alone.
Writing a note never raises into the caller: a dashboard problem is logged and the search
goes on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from types import SimpleNamespace
from typing import Any, Iterable

from optuna.trial import FrozenTrial, TrialState

log = logging.getLogger(__name__)

NOTE_SHA = "hsearch:note_sha:"  # + trial id -> sha1 of the note hsearch wrote there
FOOTER = "_Written by hsearch from the trial's attributes; edit it and hsearch leaves it alone._"
_RUNG = re.compile(r"^rung(\d+)_(\w+)$")
_NOT_TASKS = ("mean", "mlm")


# -- the text ---------------------------------------------------------------------------


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return _cell(value)
    return f"{value:.{digits}f}" if math.isfinite(value) else str(value)


def _count(value: Any) -> str:
    """1234567 -> 1.23M (tokens, parameters)."""
    try:
        n = float(value)
    except (TypeError, ValueError):
        return "–"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.0f}"


def _cell(value: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _result(attrs: dict[str, Any]) -> dict[str, Any]:
    raw = attrs.get("result")
    if isinstance(raw, dict):
        return raw
    try:
        data = json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def layer_strip(layout: str) -> list[str]:
    """The layout as a Markdown table: one column per layer, rows ``kind`` and ``norm``."""
    from hsearch.layout import Layout, LayoutError

    try:
        parsed = Layout.parse(layout)
    except LayoutError:
        return []
    head = "| layer | " + " | ".join(str(i) for i in range(parsed.num_layers)) + " |"
    rule = "|---|" + "---|" * parsed.num_layers
    kinds = "| kind | " + " | ".join(f"**{k}**" for k in parsed.kinds) + " |"
    norms = "| norm | " + " | ".join(parsed.norms) + " |"
    return [head, rule, kinds, norms]


def _tasks(attrs: dict[str, Any], result: dict[str, Any]) -> list[str]:
    names = [k[: -len("_accuracy_std")] for k in attrs if k.endswith("_accuracy_std")]
    names += [n for n in (result.get("tasks") or {}) if n not in names]
    return [n for n in names if n not in _NOT_TASKS]


def trial_note(trial: FrozenTrial) -> str:
    """The note of ``trial`` (Markdown): layout and layer strip, scores, latency, rungs, why it stopped."""
    from hsearch.layout import Layout, LayoutError, preset_name

    attrs = dict(trial.user_attrs)
    result = _result(attrs)
    layout = attrs.get("layout") or result.get("layout")
    state = trial.state.name
    outcome = attrs.get("outcome")
    lines: list[str] = []

    title = f"### Trial {trial.number}"
    if layout:
        title += f": `{layout}`"
        try:
            preset = preset_name(Layout.parse(str(layout)))
        except LayoutError:
            preset = None
        if preset:
            title += f" ({preset})"
    lines += [title, ""]
    status = f"**{state}**" + (f" · outcome `{outcome}`" if outcome and outcome.lower() != state.lower() else "")
    for key in ("origin", "recipe", "device"):
        if attrs.get(key):
            status += f" · {key} `{attrs[key]}`"
            if key == "recipe" and attrs.get("recipe_hash"):
                status += f" (`{str(attrs['recipe_hash'])[:8]}`)"
    lines += [status, ""]
    if layout:
        strip = layer_strip(str(layout))
        lines += (strip + [""]) if strip else [f"layout `{layout}` (not a layout hsearch can read)", ""]

    rows: list[tuple[str, str]] = []
    if trial.values is not None and trial.state == TrialState.COMPLETE:
        rows.append(("objectives (score · latency ms)", " · ".join(_num(v) for v in trial.values)))
    for name in _tasks(attrs, result):
        mean = attrs.get(f"{name}_accuracy")
        if mean is None:
            mean = (result.get("tasks") or {}).get(name, {}).get("score_mean")
        if mean is None:
            continue
        text = _num(mean)
        std = attrs.get(f"{name}_accuracy_std")
        if std is None:
            std = (result.get("tasks") or {}).get(name, {}).get("score_std")
        seeds = (result.get("tasks") or {}).get(name, {}).get("seeds") or []
        if std is not None:
            text += f" ± {_num(std)}"
        if seeds:
            text += f" (std over {len(seeds)} fine-tuning seed{'s' if len(seeds) != 1 else ''})"
        test = attrs.get(f"{name}_test_accuracy")
        if test is not None:
            text += f"; test {_num(test)}"
        rows.append((f"{name} accuracy", text))
    if attrs.get("mean_accuracy") is not None:
        rows.append(("mean accuracy", _num(attrs["mean_accuracy"])))
    if attrs.get("mlm_accuracy") is not None:
        text = _num(attrs["mlm_accuracy"])
        if attrs.get("mlm_loss") is not None:
            text += f" (loss {_num(attrs['mlm_loss'], 3)})"
        rows.append(("MLM accuracy", text))
    predicted, measured = attrs.get("latency_ms_predicted"), attrs.get("latency_ms")
    if predicted is not None:
        rows.append(("latency (objective: predicted)", f"{_num(predicted, 3)} ms"))
    if measured is not None:
        text = f"{_num(measured, 3)} ms"
        extra = []
        if attrs.get("latency_ms_median") is not None:
            extra.append(f"median {_num(attrs['latency_ms_median'], 3)}")
        if attrs.get("latency_ms_spread") is not None:
            extra.append(f"IQR {_num(attrs['latency_ms_spread'], 3)}")
        if attrs.get("latency_path"):
            extra.append(str(attrs["latency_path"]))
        if extra:
            text += f" ({', '.join(extra)})"
        rows.append(("latency (measured)" if predicted is not None else "latency (objective: measured)", text))
    if attrs.get("tokens_seen") is not None:
        text = _count(attrs["tokens_seen"])
        if attrs.get("optimizer_steps") is not None:
            text += f" in {_num(attrs['optimizer_steps'])} steps"
        if attrs.get("budget"):
            text += f" (budget {attrs['budget']})"
        rows.append(("tokens seen", text))
    if attrs.get("params") is not None:
        rows.append(("parameters", _count(attrs["params"])))
    if attrs.get("wall_seconds") is not None:
        rows.append(("wall time", f"{_num(attrs['wall_seconds'], 1)} s"))
    if rows:
        lines += ["| metric | value |", "|---|---|"] + [f"| {_cell(k)} | {_cell(v)} |" for k, v in rows] + [""]

    rungs: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        m = _RUNG.match(key)
        if m:
            rungs.setdefault(int(m.group(1)), {})[m.group(2)] = value
    if rungs:
        lines += ["**Multi-fidelity rungs**", "",
                  "| rung | fraction | steps | MLM accuracy | score | latency (ms) |", "|---|---|---|---|---|---|"]
        for r in sorted(rungs):
            got = rungs[r]
            lines.append(f"| {r} | {_num(got.get('fraction'), 3)} | {_num(got.get('steps'))} | "
                         f"{_num(got.get('mlm_accuracy'))} | {_num(got.get('score'))} | "
                         f"{_num(got.get('latency_ms'), 3)} |")
        lines.append("")
    fid = attrs.get("fidelity_state")
    if fid or attrs.get("stopped_at_rung") is not None:
        text = f"fidelity state `{fid}`" if fid else ""
        if attrs.get("stopped_at_rung") is not None:
            text += f"{'; ' if text else ''}stopped at rung {attrs['stopped_at_rung']}"
        lines += [text, ""]

    reason = attrs.get("reason")
    if reason or state in ("FAIL", "PRUNED"):
        why = "Why it stopped" if state == "PRUNED" else "Why it failed"
        lines += [f"**{why}**" + (f" (`{outcome}`)" if outcome else ""), ""]
        if reason:
            text = str(reason).replace("~~~", "~ ~ ~")
            lines += ["~~~text", text[:1500] + (" …" if len(text) > 1500 else ""), "~~~", ""]
        else:
            lines += ["no reason recorded (a driver lost before it reported?)", ""]
        if attrs.get("duplicate_of") is not None:
            lines += [f"duplicate of trial {attrs['duplicate_of']}", ""]
    lines.append(FOOTER)
    return "\n".join(lines) + "\n"


# -- writing ----------------------------------------------------------------------------


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _save(study, storage, trial_id: int, text: str, attrs: dict[str, Any]) -> bool:
    """Write ``text`` as the note of ``trial_id`` unless a person wrote the note there."""
    from optuna_dashboard import save_note
    from optuna_dashboard._note import get_note_from_system_attrs

    current = get_note_from_system_attrs(attrs, trial_id)["body"]
    if current == text:
        return False
    if current and attrs.get(f"{NOTE_SHA}{trial_id}") != _sha(current):
        return False  # edited in the dashboard (or written by someone else): leave it
    # save_note takes an optuna.Trial; building one would run the sampler's before_trial hook
    # (NSGA-II writes system attrs there, refused on a finished trial), so hand it what it reads.
    save_note(SimpleNamespace(storage=storage, study=study, _trial_id=trial_id), text)
    storage.set_study_system_attr(study._study_id, f"{NOTE_SHA}{trial_id}", _sha(text))
    return True


def write_note(study, trial_number: int) -> bool:
    """Write (or refresh) the dashboard note of trial ``trial_number``; True when written.

    Never raises for a dashboard or storage problem: it is logged and the caller goes on.
    """
    try:
        storage = study._storage
        trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, trial_number)
        text = trial_note(storage.get_trial(trial_id))
        return _save(study, storage, trial_id, text, storage.get_study_system_attrs(study._study_id))
    except Exception as exc:  # noqa: BLE001 - a note is never worth stopping a search for
        log.warning("hsearch: could not write the dashboard note of trial %s: %s: %s",
                    trial_number, type(exc).__name__, exc)
        return False


def write_notes(study, states: Iterable[TrialState] = (TrialState.COMPLETE, TrialState.PRUNED,
                                                       TrialState.FAIL)) -> int:
    """Write the notes of every trial of ``study`` in ``states`` that lacks an up-to-date one
    (notes a person edited are left alone); returns how many were written. Never raises."""
    written = 0
    try:
        storage = study._storage
        attrs = storage.get_study_system_attrs(study._study_id)
        trials = study.get_trials(deepcopy=False, states=tuple(states))
    except Exception as exc:  # noqa: BLE001
        log.warning("hsearch: could not read the study to write notes: %s: %s", type(exc).__name__, exc)
        return 0
    for t in trials:
        try:
            written += _save(study, storage, t._trial_id, trial_note(t), attrs)
        except Exception as exc:  # noqa: BLE001
            log.warning("hsearch: could not write the dashboard note of trial %s: %s: %s",
                        t.number, type(exc).__name__, exc)
            return written  # the storage refuses writes (read-only file, lost server): stop trying
    return written
