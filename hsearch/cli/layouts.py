"""``hsearch layouts``: the presets, or what a layout string means."""

from __future__ import annotations


def add(sub) -> None:
    p = sub.add_parser("layouts", help="list the preset layouts, or describe a layout string")
    p.add_argument("layout", nargs="*", help="layout strings or preset names to describe")
    p.set_defaults(func=handle)


def handle(args) -> int:
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
