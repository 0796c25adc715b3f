"""Named options given on the command line as ``--group.x-options KEY VALUE ...``.

One parser for every dict-valued setting (backbone options, context-algorithm options, read-out
options): tyro reads the words after the flag as one dict, each value cast like a plain flag
(int, else float, else True / False, else the string). Torch-free, so that the dataset
generators can use it.
"""

from __future__ import annotations

Option = int | float | bool | str


def option_value(text: str) -> Option:
    """A command-line option value: int, else float, else True / False, else the string (the
    order tyro tries ``int | float | bool | str`` in)."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text == "True" if text in ("True", "False") else text


def options_from_args(args: list[str]) -> dict[str, Option]:
    """``["KEY", "VALUE", ...]`` (the words after an options flag) -> ``{KEY: value}``."""
    if len(args) % 2:
        raise ValueError(f"options come as KEY VALUE pairs, got {' '.join(args)!r}")
    return {k: option_value(v) for k, v in zip(args[::2], args[1::2], strict=True)}


try:  # parse `--x.y-options KEY VALUE ...` as one dict even when the default is not empty
    from typing import Annotated

    from tyro.constructors import PrimitiveConstructorSpec

    Options = Annotated[dict[str, Option], PrimitiveConstructorSpec(
        nargs="*", metavar="KEY VALUE ...", instance_from_str=options_from_args,
        is_instance=lambda x: isinstance(x, dict),
        str_from_instance=lambda d: [t for k, v in d.items() for t in (str(k), str(v))])]
except ImportError:  # tyro < 0.9: a non-empty default fixes the keys (--x.y-options.KEY VALUE)
    Options = dict[str, Option]  # type: ignore[misc]
