"""Command line: argument parsing and display; one library call per command.

Each command has an ``_add_<name>(subparsers)`` that declares its flags and sets
``func`` to a ``_cmd_<name>(args)`` handler. Handlers import their layer lazily so that
``hsearch --help`` stays fast. Any :class:`~hsearch.errors.HsearchError` becomes one
line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from hsearch.errors import HsearchError


def _add_layouts(sub) -> None:
    p = sub.add_parser("layouts", help="list the preset layouts, or describe a layout string")
    p.add_argument("layout", nargs="*", help="layout strings or preset names to describe")
    p.set_defaults(func=_cmd_layouts)


def _cmd_layouts(args) -> int:
    from hsearch.layout import KINDS, NORMS, PRESETS, resolve

    if not args.layout:
        width = max(map(len, PRESETS))
        for preset in PRESETS.values():
            opts = ", ".join(f"{k}={v}" for k, v in preset.options.items())
            print(f"{preset.name:<{width}}  {str(preset.layout):<18} {preset.description}")
            print(f"{'':<{width}}  {'':<18} {opts}")
        print()
        print("kinds: " + "; ".join(f"{k} {v}" for k, v in KINDS.items()))
        print("norms: " + "; ".join(f"{k} {v}" for k, v in NORMS.items()))
        return 0
    for text in args.layout:
        layout, options, name = resolve(text)
        counts = ", ".join(f"{layout.count(k)}×{k}" for k in KINDS if layout.count(k))
        label = f" (preset {name})" if name else ""
        print(f"{layout}{label}: {layout.num_layers} layers, {counts}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hsearch",
        description="Search the attention layout of BERT-style encoders under a compute budget.",
    )
    from hsearch import __version__

    parser.add_argument("--version", action="version", version=f"hsearch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_layouts,):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HsearchError as exc:
        print(f"hsearch {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hsearch {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
