"""``hsearch recipe``: the built-in trial recipes, or one recipe resolved (bases and --set applied)."""

from __future__ import annotations

from hsearch.cli.common import add_set_flag


def add(sub) -> None:
    p = sub.add_parser("recipe", help="list the built-in trial recipes, or show one resolved with its hash")
    actions = p.add_subparsers(dest="recipe_command", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="print a recipe resolved (its bases merged, --set applied) as YAML, "
                                           "with its hash and chain of bases")
    show.add_argument("recipe", metavar="RECIPE", help="recipe file or name (./trials/NAME.yaml, else built-in)")
    add_set_flag(show)
    show.set_defaults(func=handle_show)
    lst = actions.add_parser("list", help="list the built-in recipes (and ./trials/*.yaml) with their descriptions")
    lst.set_defaults(func=handle_list)


def handle_show(args) -> int:
    import yaml

    from hsearch.cli.common import parse_sets
    from hsearch.trial.recipe import load_recipe, resolve_recipe

    overrides = parse_sets(args.overrides)
    recipe = load_recipe(args.recipe, overrides or None)
    chain = resolve_recipe(args.recipe).chain
    # The header is YAML comments: the output loads as a recipe with the same hash.
    print(f"# recipe {recipe.name}: {chain[0]}")
    for base in chain[1:]:
        print(f"#   base: {base}")
    for key, value in overrides.items():
        print(f"#   --set {key}={value}")
    print(f"# hash: {recipe.hash}")
    print(yaml.safe_dump(recipe.to_dict(), sort_keys=False, allow_unicode=True, width=100), end="")
    return 0


def handle_list(args) -> int:
    from pathlib import Path

    from hsearch.trial.recipe import RecipeError, builtin_recipes, load_recipe

    rows: list[tuple[str, str, str, str]] = []
    builtin = builtin_recipes()
    seen = {path.resolve() for path in builtin.values()}
    local = Path.cwd() / "trials"
    own = {}
    if local.is_dir():  # ./trials: looked up first by name (in a checkout, a link to the built-ins)
        own = {p.stem: p for p in sorted(local.iterdir())
               if p.suffix in (".yaml", ".yml") and p.is_file() and p.resolve() not in seen}
    for where, found in (("built-in", builtin), ("./trials", own)):
        for name, path in found.items():
            try:
                recipe = load_recipe(path)
                rows.append((name, recipe.hash, recipe.description or "", where))
            except RecipeError as exc:
                rows.append((name, "-" * 16, f"(does not load: {exc})", where))
    if not rows:
        print("no recipes found")
        return 0
    width = max(len(name) for name, *_ in rows)
    for name, digest, description, where in rows:
        mark = "" if where == "built-in" else f"  [{where}]"
        print(f"{name:<{width}}  {digest}  {description}{mark}")
    shadowed = sorted(set(builtin) & set(own))
    if shadowed:
        print(f"note: ./trials/ shadows the built-in {', '.join(shadowed)} when given by name")
    return 0
