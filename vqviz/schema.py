"""The schema of a checkpoint's ``meta.json``: every field a page, the catalogue or the loader reads,
with its type and range, and each model's config against its dataclass.

:func:`check_meta` runs before a checkpoint is written and after it is read, so that nothing
downstream meets a list where it expects a name, or text that cannot be sent to a browser.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from typing import Any

from .errors import CheckpointError, ConfigError
from .models import get, names
from .models.registry import not_installed

FORMAT = "vqviz-checkpoint"
FORMAT_VERSION = 1
META = "meta.json"
WEIGHTS_NAME = re.compile(r"weights-[A-Za-z0-9_-]{1,64}\.safetensors")
#: Caps on what a config may ask for; settings of this module, so a deployment can change them.
MAX_CONFIG_INT = 2**20
MAX_IN_SHAPE = (64, 4096, 4096)  # channels, height, width

_SCALAR = (bool, int, float, str, type(None))


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def _field(where: str, name: str) -> str:
    return f"{META}: the field {name!r}" if not where else f"{META}: the field '{where}.{name}'"


def _expect(ok: bool, where: str, name: str, want: str, value: Any) -> None:
    if not ok:
        raise CheckpointError(f"{_field(where, name)} must be {want}, not {_kind(value)}")


def _is_int(v: Any) -> bool:
    return type(v) is int


def _is_number(value: Any) -> bool:
    """A finite int or float, not a bool (numpy's float64 counts: it is a float)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _flat(value: Any, depth: int) -> bool:
    """Scalars, or lists and objects of them nested at most ``depth`` deep (metrics, versions)."""
    if isinstance(value, _SCALAR):
        return True
    if depth == 0:
        return False
    if isinstance(value, list):
        return len(value) <= 100_000 and all(_flat(v, depth - 1) for v in value)
    if isinstance(value, dict):
        return len(value) <= 10_000 and all(isinstance(k, str) and _flat(v, depth - 1) for k, v in value.items())
    return False


def _check_summary(summary: Any) -> None:
    _expect(isinstance(summary, dict), "", "summary", "an object", summary)
    _expect(isinstance(summary.get("family"), str), "summary", "family", "a string", summary.get("family"))
    for key in ("n_codes", "n_codebooks"):
        value = summary.get(key)
        _expect(value is None or (_is_int(value) and value >= 0), "summary", key, "a count or null", value)
    shape = summary.get("in_shape")
    _expect(isinstance(shape, list) and len(shape) == 3 and all(_is_int(d) and d >= 1 for d in shape),
            "summary", "in_shape", "three positive integers", shape)
    dataset = summary.get("dataset")
    _expect(dataset is None or isinstance(dataset, str), "summary", "dataset", "a string or null", dataset)
    headline = summary.get("headline", {})
    _expect(isinstance(headline, dict) and all(isinstance(k, str) and _is_number(v) for k, v in headline.items()),
            "summary", "headline", "an object of numbers", headline)


def _check_text(meta: dict) -> None:
    """Refuse text that no UTF-8 encoder takes, anywhere in ``meta``: JSON may escape a lone
    surrogate (``"\\ud800"``), and the app, a log or a terminal would fail on it, far from here."""
    todo = [("", meta)]
    while todo:  # a loop, not recursion: the depth is the file's choice
        where, value = todo.pop()
        if isinstance(value, str):
            if not _encodable(value):
                raise CheckpointError(f"{META}: the field {where!r} holds text that is not valid Unicode "
                                      "(a lone surrogate such as \\ud800)")
        elif isinstance(value, dict):
            for key, item in value.items():
                if not _encodable(key):
                    raise CheckpointError(f"{META}: {f'the field {where!r}' if where else 'the top level'} has a "
                                          f"key that is not valid Unicode ({key[:40]!r})")
                todo.append((f"{where}.{key}" if where else key, item))
        elif isinstance(value, list):
            todo.extend((f"{where}[{i}]", item) for i, item in enumerate(value))


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_real(value: Any) -> bool:
    """An int or float, not a bool; NaN allowed (a metric may be undefined, and pages show it as such)."""
    return type(value) in (int, float)


#: The metrics that a page or the command line reads by name as one value, each with its type when
#: present; the others (some hold one value per codebook) are only listed, and any scalar, or list
#: or object of them (``_flat``), will do.
METRIC_TYPES = {
    **{key: (_is_real, "a number") for key in (
        "p_e", "epsilon", "quantizer_test_accuracy", "test_accuracy", "encoder_test_accuracy", "train_seconds")},
    "k": (lambda v: _is_int(v) and v >= 0, "a count"),
    "k_rule": (lambda v: _is_int(v) and v >= 0, "a count"),
    "k_rule_met": (lambda v: type(v) is bool, "true or false"),
}
#: The decoder check (:func:`vqviz.health.check_decoder`) compares and formats these.
DECODER_CHECK_TYPES = {"degenerate": (lambda v: type(v) is bool, "true or false"),
                       "decoded": (lambda v: _is_int(v) and v >= 0, "a count"),
                       **{key: (_is_real, "a number") for key in (
                           "std_ratio", "between_ratio", "threshold", "recognisable", "recognisable_on_data",
                           "recognisable_ratio")}}


def _check_metrics(metrics: dict) -> None:
    """The types of the metrics read by name (:data:`METRIC_TYPES`), the decoder check, the K curve and the
    codebook history."""
    for key, value in metrics.items():
        if not _flat(value, 3):
            raise CheckpointError(f"{_field('metrics', key)} must be a number, a string, or a list or "
                                  "object of them")
        if key in METRIC_TYPES:
            ok, want = METRIC_TYPES[key]
            _expect(ok(value), "metrics", key, want, value)
    check = metrics.get("decoder_check", {})
    _expect(isinstance(check, dict), "metrics", "decoder_check", "an object", check)
    for key, (ok, want) in DECODER_CHECK_TYPES.items():
        if key in check:
            _expect(ok(check[key]), "metrics.decoder_check", key, want, check[key])
    curve = metrics.get("k_curve", [])
    _expect(isinstance(curve, list), "metrics", "k_curve", "a list", curve)
    for i, point in enumerate(curve):  # one object per K of the sweep: K and its scores
        _expect(isinstance(point, dict) and _is_int(point.get("k")) and point["k"] >= 1
                and all(_is_real(v) or v is None for v in point.values()),
                "metrics", f"k_curve[{i}]", "an object of K (a count) and numbers", point)
    if "codebook_history" in metrics:
        _check_codebook_history(metrics["codebook_history"])


#: What each value of a codebook history must be: one per recorded epoch, for L codebooks a list of L.
HISTORY_VALUES = {
    "usage_entropy": (lambda v, k: _is_number(v) and 0 <= v <= math.log(k) + 1e-6, "an entropy in [0, ln K]"),
    "perplexity": (lambda v, k: _is_number(v) and 1 - 1e-6 <= v <= k * (1 + 1e-6), "a perplexity in [1, K]"),
    "dead_codes": (lambda v, k: _is_int(v) and 0 <= v < k, "a count of dead codes below K"),
}


def _check_codebook_history(history: Any) -> None:
    """``metrics.codebook_history`` (:class:`vqviz.models.history.CodebookHistory`): K, the sample size,
    and lists of one entry per recorded epoch, all as long; each value a number, or a list of one per
    codebook (as many in every entry)."""
    where = "metrics.codebook_history"
    _expect(isinstance(history, dict), "metrics", "codebook_history", "an object", history)
    k, sample = history.get("n_codes"), history.get("sample")
    for key, value in (("n_codes", k), ("sample", sample)):
        _expect(_is_int(value) and 1 <= value <= MAX_CONFIG_INT, where, key, f"a count in 1..{MAX_CONFIG_INT}", value)
    _expect(isinstance(history.get("split", ""), str), where, "split", "a string", history.get("split"))
    series = {key: history.get(key) for key in ("epoch", "stage", *HISTORY_VALUES)}
    for key, values in series.items():
        _expect(isinstance(values, list) and len(values) >= 1, where, key, "a list of one entry per epoch", values)
    lengths = {len(values) for values in series.values()}
    if len(lengths) > 1:
        raise CheckpointError(f"{_field('metrics', 'codebook_history')} must have as many entries in each of "
                              f"{', '.join(series)}, not {', '.join(str(len(v)) for v in series.values())}")
    for i, (epoch, stage) in enumerate(zip(series["epoch"], series["stage"])):
        _expect(_is_int(epoch) and 0 <= epoch <= MAX_CONFIG_INT, where, f"epoch[{i}]",
                f"an epoch (an integer in 0..{MAX_CONFIG_INT})", epoch)
        _expect(isinstance(stage, str) and 0 < len(stage) <= 64, where, f"stage[{i}]", "a stage's name", stage)
    width = None  # None: one codebook; L: lists of L values
    for key, (ok, want) in HISTORY_VALUES.items():
        for i, value in enumerate(series[key]):
            row = value if isinstance(value, list) else [value]
            shape = len(value) if isinstance(value, list) else None
            width = shape if key == "usage_entropy" and i == 0 else width
            _expect(shape == width and len(row) >= 1 and all(ok(v, k) for v in row), where, f"{key}[{i}]",
                    want + (f", or a list of {width} of them" if width else ""), value)


def check_meta(meta: Any) -> dict:
    """Check a parsed ``meta.json`` against the schema; return it with optional fields filled in.

    Every field's type and range is checked, so that nothing downstream (the app's
    sidebar, the catalogue, the loader) meets a list where it expects a name: the
    metrics that pages read by name too (:data:`METRIC_TYPES`, the decoder check, the
    K curve, the codebook history), and all text, keys included, must be encodable as UTF-8.

    Raises
    ------
    CheckpointError
        Naming the first field that is wrong.
    """
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{META} is not a vqviz checkpoint (no format tag {FORMAT!r})")
    _check_text(meta)
    version = meta.get("format_version")
    _expect(_is_int(version), "", "format_version", "an integer", version)
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{META} has format version {version}; this vqviz reads up to "
                              f"{FORMAT_VERSION}: upgrade vqviz")
    if version < 1:
        raise CheckpointError(f"{_field('', 'format_version')} must be 1 to {FORMAT_VERSION}, not {version}")
    for key in ("model", "config", "weights"):
        if key not in meta:
            raise CheckpointError(f"{META} is corrupted: the field {key!r} is missing")
    model = meta["model"]
    _expect(isinstance(model, str), "", "model", "a string", model)
    if model not in names():  # a plug-in's family that is not installed here: say where it would come from
        raise CheckpointError(f"{_field('', 'model')} {not_installed(model, meta.get('versions'))}")
    out = {"train": {}, "dataset": None, "split_sizes": {}, "seed": None, "metrics": {}, "versions": {},
           "state": {}, **meta}
    for key in ("config", "train", "split_sizes", "metrics", "versions", "state", "weights"):
        _expect(isinstance(out[key], dict), "", key, "an object", out[key])
        if not all(isinstance(k, str) for k in out[key]):
            raise CheckpointError(f"{_field('', key)} must have string keys")
    dataset = out["dataset"]
    _expect(dataset is None or isinstance(dataset, str), "", "dataset", "a string or null", dataset)
    if dataset is not None and not 0 < len(dataset) <= 4096:
        raise CheckpointError(f"{_field('', 'dataset')} must be 1 to 4096 characters long")
    seed = out["seed"]
    _expect(seed is None or _is_int(seed), "", "seed", "an integer or null", seed)
    for split, n in out["split_sizes"].items():
        _expect(_is_int(n) and n >= 0, "split_sizes", split, "a count (an integer >= 0)", n)
    _check_metrics(out["metrics"])
    for key, value in out["versions"].items():
        _expect(isinstance(value, str), "versions", key, "a string", value)
    if not _flat(out["train"], 2):
        raise CheckpointError(f"{_field('', 'train')} must hold numbers and strings")
    if "summary" in out:
        _check_summary(out["summary"])
    w = out["weights"]
    file, sha = w.get("file"), w.get("sha256")
    _expect(isinstance(file, str), "weights", "file", "a string", file)
    if not WEIGHTS_NAME.fullmatch(file):
        raise CheckpointError(f"{_field('weights', 'file')} must name a weights-*.safetensors file inside "
                              "the checkpoint folder (no folders, no '..')")
    _expect(isinstance(sha, str), "weights", "sha256", "a string", sha)
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise CheckpointError(f"{_field('weights', 'sha256')} must be 64 lowercase hex digits")
    return out


def check_config(name: str, raw: dict) -> Any:
    """The config dataclass of model ``name`` built from ``raw``, every field's type and range checked.

    Raises
    ------
    CheckpointError
        Naming the field.
    """
    cls = get(name)
    hints = typing.get_type_hints(cls.Config)
    known = {f.name for f in dataclasses.fields(cls.Config)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise CheckpointError(f"{_field('config', unknown[0][:40])} is not a setting of the {name!r} model "
                              "(a checkpoint of another vqviz version?)")
    values = {}
    for key, value in raw.items():
        values[key] = _check_setting(key, hints[key], value)
    shape = values.get("in_shape")
    if shape is not None and any(not 1 <= d <= m for d, m in zip(shape, MAX_IN_SHAPE)):
        raise CheckpointError(f"{_field('config', 'in_shape')} must be (channels, height, width) within "
                              f"1..{MAX_IN_SHAPE}, not {list(shape)}")
    try:
        return cls.Config(**values)
    except (ConfigError, TypeError, ValueError, OverflowError) as e:
        raise CheckpointError(f"{META}: the config does not describe a {name!r} model: {e}") from None


def _check_setting(key: str, hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if hint is bool:
        _expect(type(value) is bool, "config", key, "true or false", value)
    elif hint is int:
        _expect(_is_int(value), "config", key, "an integer", value)
        if abs(value) > MAX_CONFIG_INT:
            raise CheckpointError(f"{_field('config', key)} is {value}; the limit is {MAX_CONFIG_INT}")
    elif hint is float:
        _expect(_is_number(value), "config", key, "a finite number", value)
        value = float(value)
    elif hint is str:
        _expect(isinstance(value, str) and len(value) <= 256, "config", key, "a short string", value)
    elif origin is tuple:
        args = typing.get_args(hint)
        _expect(isinstance(value, list) and len(value) <= 1024, "config", key, "a list of integers", value)
        if not (len(args) == 2 and args[1] is Ellipsis) and len(value) != len(args):
            raise CheckpointError(f"{_field('config', key)} must hold {len(args)} integers, not {len(value)}")
        for v in value:
            _expect(_is_int(v) and abs(v) <= MAX_CONFIG_INT, "config", key, "a list of integers "
                    f"up to {MAX_CONFIG_INT}", v)
        value = tuple(value)
    elif hint is dict or origin is dict:  # JSON arguments (a wrapped model's factory_args)
        _expect(isinstance(value, dict) and _flat(value, 4), "config", key,
                "an object of numbers, strings, and lists and objects of them", value)
    else:  # a type this schema does not know: refuse rather than guess
        raise CheckpointError(f"{_field('config', key)} has a type this vqviz cannot check")
    return value
