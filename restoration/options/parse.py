"""Read, override, validate and resolve an option file into the dict the trainer and tester use.

Order matters for the user: everything is checked first and reported at once; only a valid file
leads to folders being created (by the caller, after :func:`parse_options` returns).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
import yaml

from restoration.errors import value_repr
from restoration.errors import OptionsError

from restoration.options.schema import DIST, TOP_LEVEL
from restoration.schema import Key, check_spec
from restoration.options.upstream import expand_paths, json_options_problem, translate_upstream
from restoration.options.validate import remember_valid_run, top_level_spec, validate_options
from restoration.options.yaml_io import YAMLLimitError, load_yaml, parse_yaml_value, yaml_problem
from restoration.utils.dist import backend_problem, barrier, get_dist_info

__all__ = [
    "OptionsError",
    "parse_options",
    "parse_options_all_ranks",
    "read_dist_params",
    "apply_overrides",
    "fill_defaults",
    "experiment_paths",
    "PrepareData",
]


def apply_overrides(opt: dict[str, Any], overrides: Iterable[str]) -> list[str]:
    """Apply ``key.sub=value`` (or BasicSR's ``key:sub=value``) overrides in place; values parse as YAML.

    ``key=~`` (or ``key=null``) removes the key, so an optional key returns to its default.

    Returns:
        Problems (malformed overrides, a value that is not valid YAML or carries a ``!!python`` tag); never
        evaluates Python.
    """
    problems = []
    for item in overrides:
        if "=" not in item:
            problems.append(f"override '{item}' must look like 'train.total_iter=1000'")
            continue
        key, text = item.split("=", 1)
        parts = [p for p in key.replace(":", ".").split(".") if p]
        node = opt
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        if not parts:
            problems.append(f"override '{item}' has an empty key")
            continue
        try:
            value = parse_yaml_value(text, source=f"override '{key}'")
        except YAMLLimitError as exc:  # an alias bomb: the message names the override
            problems.append(str(exc))
            continue
        except yaml.YAMLError as exc:  # bad syntax, !!python/... tags (SafeLoader builds no objects)
            problems.append(f"override {value_repr(item)}: the value is not plain YAML: {yaml_problem(exc)}")
            continue
        if value is None:  # `key=~` removes the key: an optional key falls back to its default
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    return problems


def _override_names(problem: str, key: str) -> bool:
    """Whether ``problem`` is about the option ``key`` (``a.b.c``), spelled ``'a.b.c'`` or ``'a.b': 'c'``."""
    if f"'{key}'" in problem:
        return True
    parts = key.split(".")
    return any(problem.startswith(f"'{'.'.join(parts[:i])}': ") and f"'{'.'.join(parts[i:])}'" in problem
               for i in range(1, len(parts)))


def _name_override(problem: str, overrides: Iterable[str]) -> str:
    """``problem`` prefixed with the ``--force_yml`` override that set the option it is about (if any), so
    ``--force_yml train.total_iter=abc`` is named, not only the option file that never said ``abc``."""
    for item in overrides:
        key = item.split("=", 1)[0]
        dotted = ".".join(p for p in key.replace(":", ".").split(".") if p)
        if "=" in item and dotted and _override_names(problem, dotted):
            return f"--force_yml {value_repr(item)[1:-1]}: {problem}"
    return problem


def fill_defaults(opt: dict[str, Any], spec: Mapping[str, Key] = TOP_LEVEL) -> None:
    """Insert schema defaults for absent keys, recursing into present sub-sections (in place)."""
    for key, rule in spec.items():
        if opt.get(key) is None and rule.default is not None:
            opt[key] = copy.deepcopy(rule.default)
        if rule.children is not None and isinstance(opt.get(key), dict):
            fill_defaults(opt[key], rule.children)


def experiment_paths(opt: Mapping[str, Any], is_train: bool, root: str | os.PathLike = ".") -> dict[str, str]:
    """The folders of an experiment (train) or a test run, honouring ``path.experiments_root``."""
    name = opt["name"]
    root = Path(root).resolve()
    path = opt.get("path") or {}
    if is_train:
        exp = Path(path.get("experiments_root") or root / "experiments" / name).resolve()
        return {
            "experiments_root": str(exp),
            "models": str(exp / "models"),
            "training_states": str(exp / "training_states"),
            "visualization": str(exp / "visualization"),
            "log": str(exp),
            "options": str(exp / "options"),
            "tb_logger": str(Path(path.get("tb_logger_root") or root / "tb_logger" / name).resolve()),
        }
    res = Path(path.get("results_root") or root / "results" / name).resolve()
    return {"results_root": str(res), "log": str(res), "visualization": str(res / "visualization")}


def name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be an experiment folder name (None: it can).

    The name becomes ``experiments/<name>``: a separator or ``..`` would put the run (and the folder
    that a re-run archives) outside ``experiments/``.
    """
    if not isinstance(name, str):
        return None  # the schema reports the type
    if name.strip() in ("", ".", ".."):
        return f"'name' {value_repr(name)} cannot be a folder name"
    if "/" in name or "\\" in name or os.sep in name or "\0" in name:
        return f"'name' {value_repr(name)} must be a plain folder name (no '/', '\\'); set path.experiments_root to place it elsewhere"
    if len(name.encode()) > MAX_NAME_BYTES:  # a file name has at most 255 bytes; the archive adds a suffix
        return f"'name' is {len(name.encode())} bytes long, at most {MAX_NAME_BYTES}: {value_repr(name)}"
    return None


#: The longest experiment name in bytes: a file name's 255 less the archive suffix ``_archived_<time>_<n>``.
MAX_NAME_BYTES = 200


def _debug_overrides(opt: dict[str, Any]) -> None:
    if not opt["name"].startswith("debug"):
        opt["name"] = "debug_" + opt["name"]
    opt.setdefault("logger", {}).update(print_freq=1, save_checkpoint_freq=8)
    if opt.get("val"):
        opt["val"]["val_freq"] = 8


#: How a command builds the demo dataset that ``demo_data`` names: ``(root, scale) -> anything``
#: (:func:`restoration.data.demo.prepare_demo_dataset`).
PrepareData = Callable[[str, int], Any]


def _prepare_demo_data(opt: dict[str, Any], problems: list[str], is_train: bool,
                       prepare_data: PrepareData | None) -> list[str]:
    """Have the command build the demo dataset when it is the *only* thing missing, then re-check."""
    demo = opt.get("demo_data")
    if prepare_data is None or not isinstance(demo, dict) or not problems:
        return problems
    root = str(demo.get("root", "datasets/demo"))
    if any(root not in p for p in problems):
        return problems  # other mistakes: report them all before writing anything
    prepare_data(root, int(demo.get("scale", 2)))
    return validate_options(opt, is_train=is_train, user_named=True)


def parse_options(
    opt_path: str,
    is_train: bool,
    overrides: Iterable[str] = (),
    debug: bool = False,
    root: str | os.PathLike = ".",
    notices: list[str] | None = None,
    prepare_data: PrepareData | None = None,
) -> dict[str, Any]:
    """Load ``opt_path``, apply overrides, validate everything and resolve defaults and paths.

    Parsing reads and writes no data. A command may pass ``prepare_data`` to build the demo dataset that a
    ``demo_data`` section names (``train.py`` and ``test.py`` pass
    :func:`restoration.data.demo.prepare_demo_dataset`): it is called only when that dataset is the one
    thing the file lacks, and the file is checked again after it.

    Args:
        opt_path: YAML option file.
        is_train: Training (``train.py``) or testing (``test.py``) options.
        overrides: ``key.sub=value`` strings from ``--force_yml``.
        debug: ``--debug`` smoke settings (tiny print/val/save frequencies, ``debug_`` name).
        root: Folder that ``experiments/``, ``tb_logger/`` and ``results/`` are created in.
        notices: Filled with one line per upstream spelling translated (:mod:`restoration.options.upstream`),
            for the log to print once.
        prepare_data: ``(root, scale) ->`` builds the demo dataset (see above); None: never built here.

    Raises:
        OptionsError: With every problem found; nothing has been written to disk.
    """
    if not os.path.isfile(opt_path):
        raise OptionsError(opt_path, [f"option file not found: {opt_path}"])
    if json_options_problem(opt_path):
        raise OptionsError(opt_path, [str(json_options_problem(opt_path))])
    try:
        opt = load_yaml(opt_path)
    except yaml.YAMLError as exc:  # with line/column; an alias bomb is refused before it is expanded
        raise OptionsError(opt_path, [f"not valid YAML: {yaml_problem(exc)}"]) from None
    except UnicodeDecodeError as exc:
        raise OptionsError(opt_path, [f"not valid YAML: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except OSError as exc:
        raise OptionsError(opt_path, [f"cannot read it: {exc.strerror or exc}"]) from None
    if not isinstance(opt, dict):
        raise OptionsError(opt_path, ["the file must contain a mapping of options"])
    problems = apply_overrides(opt, overrides)
    if debug and isinstance(opt.get("name"), str):
        _debug_overrides(opt)
    expand_paths(opt)
    translated, problems_upstream = translate_upstream(opt, user_named=True)
    problems += problems_upstream
    if notices is not None:
        notices.extend(translated)
    problems += validate_options(opt, is_train=is_train, user_named=True)  # the file named with -opt
    if name_problem(opt.get("name")):
        problems.append(str(name_problem(opt.get("name"))))
    problems = _prepare_demo_data(opt, problems, is_train, prepare_data)
    if problems:
        raise OptionsError(opt_path, [_name_override(p, overrides) for p in problems])
    if not is_train and isinstance(opt.get("val"), dict):
        opt["val"].setdefault("pbar", True)  # test.py shows its progress unless told not to
    elif not is_train and opt.get("val") is None:
        opt["val"] = {"pbar": True}
    fill_defaults(opt, top_level_spec(opt, user_named=True))
    for phase, dopt in opt["datasets"].items():
        dopt["phase"] = phase.split("_")[0]
        dopt["scale"] = opt["scale"]
        dopt.setdefault("name", phase)
    if isinstance(opt["num_gpu"], str):
        opt["num_gpu"] = torch.cuda.device_count()
    opt["path"].update(experiment_paths(opt, is_train, root))
    remember_valid_run(opt, is_train, user_named=True)  # the trainer's constructor does not check it again
    return opt


def read_dist_params(opt_path: str, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """``dist_params`` of an option file (overrides applied, defaults filled), read before the process
    group exists. Anything unreadable or invalid gives the defaults here: :func:`parse_options`, which
    runs next on every rank, reports it."""
    params: dict[str, Any] = {}
    try:
        opt = load_yaml(opt_path)
        if isinstance(opt, dict) and not apply_overrides(opt, overrides) and isinstance(opt.get("dist_params"), dict):
            params = dict(opt["dist_params"])
    except (OSError, ValueError, yaml.YAMLError):  # parse_options reports it, with the line and column
        params = {}
    problems: list[str] = []
    check_spec(params, DIST, "dist_params.", problems)
    if problems or (isinstance(params.get("backend"), str) and backend_problem(params["backend"])):
        params = {}
    fill_defaults(params, DIST)
    return params


def parse_options_all_ranks(opt_path: str, is_train: bool, **kwargs: Any) -> dict[str, Any]:
    """:func:`parse_options` on rank 0 first, then on the other ranks.

    With a ``prepare_data`` argument parsing may build the demo dataset; doing it on rank 0 alone, behind
    a barrier, means the other ranks find it complete. Every rank reaches the barrier even when rank 0's options are bad (the
    other ranks then fail with the same error), so no rank hangs.
    """
    rank = get_dist_info()[0]
    error: OptionsError | None = None
    opt: dict[str, Any] = {}
    if rank == 0:
        try:
            opt = parse_options(opt_path, is_train, **kwargs)
        except OptionsError as exc:
            error = exc
    barrier()
    if rank != 0:
        opt = parse_options(opt_path, is_train, **kwargs)
    if error is not None:
        raise error
    return opt
