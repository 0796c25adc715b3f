"""The ``icarena`` command.

    icarena list                         envs, backbones, generators, tasks, experiments
    icarena generate NAME [--flags]      task -> dataset on disk
    icarena pretrain NAME [--flags]      dataset/task -> trained run dir (--resume continues)
    icarena evaluate NAME [--flags]      run dir -> RUN/eval/metrics.json + report.md
    icarena run NAME [--flags]           a named experiment chaining the stages
    icarena search [--flags]             the same as `icarena run search`
    icarena report RUN [RUN ...]         run dirs' metrics.json -> markdown results table
    icarena export FORMAT [--flags]      dataset -> minari dataset / learning histories

Every command also takes --max-memory SIZE (default 16GiB, or ICARENA_MAX_MEMORY) and --max-work N
(default 1e14 operations, or ICARENA_MAX_WORK): sizes above them are refused before anything runs.

Every NAME's flags come from its config dataclass (``icarena run NAME --help`` documents every
field); the resolved config is saved in the output directory. Errors in the user's input print
one line (``icarena: error: ...``) and exit with status 2.
"""

from __future__ import annotations

import importlib
import os
import pickle
import sys
from collections.abc import Sequence
from typing import Any

from icarena import limits
from icarena.errors import IcarenaError, one_line

# stage -> (registry module, registry attribute, config attribute, function attribute)
STAGES: dict[str, tuple[str, str, str, str]] = {
    "generate": ("icarena.pretraining.generate", "GENERATORS", "Config", "generate"),
    "pretrain": ("icarena.pretraining.pretrain", "PRETRAINERS", "PretrainConfig", "pretrain"),
    "evaluate": ("icarena.evaluation.evaluate", "EVALUATORS", "EvalConfig", "evaluate"),
    "run": ("icarena.experiments", "EXPERIMENTS", "Config", "run"),
    "export": ("icarena.exports", "EXPORTERS", "Config", "export"),
}


def _registry(stage: str) -> dict[str, tuple[str, str]]:
    module, attr, _, _ = STAGES[stage]
    return getattr(importlib.import_module(module), attr)


def _usage() -> str:
    lines = [__doc__.strip().splitlines()[0], "", "usage:"]
    lines += ["  " + line.strip() for line in __doc__.split("\n\n")[1].splitlines()]
    return "\n".join(lines)


def _stage_usage(stage: str) -> str:
    reg = _registry(stage)
    width = max((len(n) for n in reg), default=0)
    rows = [f"  {n.ljust(width)}  {h}" for n, (_, h) in sorted(reg.items())]
    return f"usage: icarena {stage} NAME [--flags]   (icarena {stage} NAME --help)\n\n" + (
        "\n".join(rows) or "  (none registered)"
    )


def _take(args: list[str], flag: str, what: str) -> str | None:
    """Remove ``flag VALUE`` from ``args``; return VALUE (None when the flag is absent)."""
    if flag not in args:
        return None
    i = args.index(flag)
    if i + 1 >= len(args) or args[i + 1].startswith("--"):
        raise IcarenaError(f"{flag} needs a value: {flag} {what}")
    value = args[i + 1]
    del args[i : i + 2]
    return value


def _parse(config_cls: type, args: Sequence[str], prog: str, module: Any = None) -> Any:
    """Parse ``args`` into ``config_cls``. ``--config RUN/config.json`` first loads the settings
    a run saved, ``--preset NAME`` the module's preset ``PRESETS[NAME]()`` (e.g. ``paper``, the
    paper's scale); the flags given beside either override them."""
    import dataclasses


    args = list(args)
    saved = _take(args, "--config", "RUN/config.json")
    # a config with its own `preset` field (the ICGP stages: the paper's training budget follows
    # the data it reads) resolves the preset itself
    own = dataclasses.is_dataclass(config_cls) and any(
        f.name == "preset" for f in dataclasses.fields(config_cls))
    preset = None if own else _take(args, "--preset", "NAME")
    if saved is not None and preset is not None:
        raise IcarenaError("pass --config or --preset, not both (a saved config already holds "
                           "every setting)")
    default = None
    if saved is not None:
        default = saved_config(config_cls, saved)
    if preset is not None:
        default = preset_config(module, preset, config_cls)
    return _tyro_cli(config_cls, args, prog, default)


def _tyro_cli(config_cls: type, args: list[str], prog: str, default: Any) -> Any:
    """``tyro.cli`` whose parse errors become one-line :class:`IcarenaError` s (tyro prints a
    multi-line box and exits 2); ``--help`` text is passed through to stdout unchanged."""
    import contextlib
    import io

    import tyro

    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return tyro.cli(config_cls, args=args, prog=prog, default=default)
    except SystemExit as e:
        if not e.code:
            sys.stdout.write(captured.getvalue())
            raise
        raise IcarenaError(_box_message(captured.getvalue(), prog)) from None


def _box_message(text: str, prog: str) -> str:
    """The first message line of tyro's error box, with a pointer to ``--help``."""
    lines = []
    for raw in text.splitlines():
        line = raw.strip().strip("\u2502\u256d\u256e\u2570\u256f").strip()
        if not line or set(line) <= set("\u2500 "):
            continue
        if line.startswith("\u2500") and line.endswith("\u2500"):
            continue
        lines.append(line)
    message = next((ln for ln in lines if ":" in ln and not ln.startswith("For full")),
                   lines[0] if lines else "cannot parse the arguments")
    return f"{message.rstrip('.')}; see `{prog} --help`"


def preset_config(module: Any, name: str, config_cls: type) -> Any:
    """The config of preset ``name`` of a stage or experiment module (``PRESETS``: name ->
    function returning its config; 'cpu', the defaults, is every command's)."""
    presets = dict(getattr(module, "PRESETS", {}))
    presets.setdefault("cpu", config_cls)
    if name not in presets or presets[name] is None:
        raise IcarenaError(f"unknown --preset {name!r}; this command has: "
                           f"{', '.join(sorted(k for k, v in presets.items() if v))}")
    return presets[name]()


# Where a run's config.json keeps the stage's own settings (experiments, pretrain stages, the
# search); an experiment's own config.json holds them at the top level.
_STAGE_KEYS = ("experiment", "pretrain", "search")


def saved_config(config_cls: type, path: str) -> Any:
    """The ``config_cls`` instance that a run's ``config.json`` recorded."""
    import json
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise IcarenaError(f"cannot read --config {p} ({e}); pass a run's config.json") from e
    if not isinstance(data, dict):
        raise IcarenaError(f"--config {p} is not a JSON object; pass a run's config.json")
    section = next((data[k] for k in _STAGE_KEYS if isinstance(data.get(k), dict)), data)
    # what to do with the target is this invocation's choice, not a saved setting
    section = {k: v for k, v in section.items() if k not in ("resume", "overwrite")}
    try:
        return _from_dict(config_cls, section)
    except (TypeError, ValueError) as e:
        raise IcarenaError(f"--config {p} does not hold settings of this command ({e})") from e


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) config dataclass from its ``asdict`` form; unknown keys are errors."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"unknown settings {unknown}")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = _from_dict(hint, value)
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[name] = value
    return cls(**kwargs)


def _print_summary(result: Any) -> None:
    if isinstance(result, str | os.PathLike):
        print(f"wrote {result}")
        return
    if not isinstance(result, dict):
        return
    rows = result.get("rows") or []
    if rows:
        from icarena.evaluation.report import markdown_table

        headers = list(dict.fromkeys(k for row in rows for k in row))
        print(markdown_table(headers, [[row.get(h, "") for h in headers] for row in rows]))
    if result.get("report"):
        print(f"\nreport: {result['report']}")


def run_stage(stage: str, name: str, args: Sequence[str]) -> Any:
    """Parse ``args`` into the config of ``stage`` entry ``name`` and run it."""
    reg = _registry(stage)
    if name not in reg:
        raise IcarenaError(
            f"unknown {stage} name {name!r}; available: {', '.join(sorted(reg)) or 'none'} "
            "(see `icarena list`)"
        )
    _, _, cfg_attr, fn_attr = STAGES[stage]
    module = importlib.import_module(reg[name][0])
    cfg = _parse(getattr(module, cfg_attr), args, prog=f"icarena {stage} {name}", module=module)
    check_numbers(cfg)
    return getattr(module, fn_attr)(cfg)


def check_numbers(cfg: Any, prefix: str = "--") -> None:
    """Refuse, for every stage alike, the numbers no setting accepts: NaN or infinite floats and
    negative seeds (numpy refuses them only once the work has begun)."""
    import dataclasses
    import math

    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        flag = prefix + f.name.replace("_", "-")
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_numbers(value, flag + ".")
        elif isinstance(value, float) and not math.isfinite(value):
            raise IcarenaError(f"{flag} must be a finite number, got {value}")
        elif isinstance(value, dict):  # options such as --context-options eta 0.1
            for key, v in value.items():
                if isinstance(v, float) and not math.isfinite(v):
                    raise IcarenaError(f"{flag} {key} must be a finite number, got {v}")
        elif (isinstance(value, int) and not isinstance(value, bool) and value < 0
              and (f.name == "seed" or f.name.endswith("_seed"))):
            raise IcarenaError(f"{flag} must be >= 0 (seeds are non-negative), got {value}")


def list_everything() -> str:
    """The text of ``icarena list``."""
    import gymnasium

    import icarena  # noqa: F401  (registers the envs)
    from icarena.plugins import PLUGIN_ENVS
    from icarena.pretraining import backbones

    def ours(env_id: str) -> bool:
        return env_id.startswith("icarena/") or env_id in PLUGIN_ENVS

    def plugin(env_id: str) -> str:
        return f"(plugin {PLUGIN_ENVS[env_id]}) " if env_id in PLUGIN_ENVS else ""

    out = ["envs (gymnasium.make / pettingzoo.make):"]
    for env_id, spec in sorted(gymnasium.registry.items()):
        if ours(env_id):
            out.append(f"  {env_id:28s} {plugin(env_id)}{_first_doc_line(spec.entry_point)}")
    import pettingzoo

    for env_id, spec in sorted(getattr(pettingzoo, "parallel_registry", {}).items()):
        if ours(env_id):
            out.append(f"  {env_id:28s} (pettingzoo parallel) {plugin(env_id)}"
                       f"{_first_doc_line(spec.entry_point)}")
    out.append("\nbackbones (--backbone NAME):")
    from icarena.evaluation.planning_probes import probe_support

    for n in backbones.available():
        try:
            decoding = "yes" if backbones.incremental(n) else "no (recomputes the prefix)"
            help_line = (f"{backbones.describe(n)} [incremental decoding: {decoding}; "
                         f"path probes: {probe_support(n)}]")
        except Exception as e:  # a broken plugin backbone must not break `icarena list`
            help_line = f"(fails to load: {type(e).__name__}: {e})"
        out.append(f"  {n:28s} {help_line}")
    for stage, title in (("generate", "generators (icarena generate NAME)"),
                         ("pretrain", "pretraining tasks (icarena pretrain NAME)"),
                         ("evaluate", "evaluations (icarena evaluate NAME)"),
                         ("run", "experiments (icarena run NAME)"),
                         ("export", "exports (icarena export FORMAT)")):
        out.append(f"\n{title}:")
        out += [f"  {n:28s} {h}" for n, (_, h) in sorted(_registry(stage).items())]
    return "\n".join(out)


def _first_doc_line(entry_point: Any) -> str:
    try:
        if isinstance(entry_point, str):
            mod, _, attr = entry_point.partition(":")
            obj = getattr(importlib.import_module(mod), attr)
        else:
            obj = entry_point
        return (obj.__doc__ or "").strip().splitlines()[0]
    except Exception:  # an env's help line must never break `icarena list`
        return ""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``icarena`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    try:
        argv, found = limits.pop_flags(argv)
        with limits.from_flags(found):
            return _dispatch(argv)
    except IcarenaError as e:
        print(f"icarena: error: {one_line(e.cli_message())}", file=sys.stderr)
        return 2
    except pickle.UnpicklingError as e:
        print(f"icarena: error: refused to unpickle a file (icarena loads only plain tensors, "
              f"weights_only=True; {one_line(str(e).splitlines()[0] if str(e) else e)}); "
              "pass a checkpoint that icarena wrote", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `icarena ... | head`: the reader is gone, nothing to report
        return 0
    except OSError as e:
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        what = e.strerror or one_line(e)
        print(f"icarena: error: {what}{where}; check that the path exists, is a directory "
              "where one is expected, is writable and that the disk has room", file=sys.stderr)
        return 2
    except MemoryError as e:
        print(f"icarena: error: out of memory ({one_line(e) or 'MemoryError'}); lower the sizes "
              f"of the run, or lower {limits.FLAG} so that it is refused before allocating",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("icarena: interrupted (rerun the same command with --resume to continue)",
              file=sys.stderr)
        return 130


def _dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command == "list":
        print(list_everything())
        return 0
    if command == "report":
        from icarena.evaluation.results import report_main

        return report_main(rest)
    if command == "search":  # the verb of earlier versions
        command, rest = "run", ["search", *rest]
    if command not in STAGES:
        raise IcarenaError(
            f"unknown command {command!r}; use one of: list, {', '.join(STAGES)}, search"
        )
    if not rest or rest[0] in ("-h", "--help"):
        print(_stage_usage(command))
        return 0 if rest else 2
    _print_summary(run_stage(command, rest[0], rest[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
