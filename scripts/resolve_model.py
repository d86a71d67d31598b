"""Resolve a launcher's MODEL argument to a model folder, exactly (no prefix matching).

    python scripts/resolve_model.py NAME

NAME is a folder under models/ (u2net, ddrnet) or a registry name (u2netp, ddrnet23_slim).
Prints ``models/<folder>`` for a folder name, ``models/<folder> <registry name>`` for a registry
name (the launchers then pass ``model.name=<registry name>``). A folder name wins when a name is
both, so the config keeps choosing the variant. Anything else exits 2 listing both kinds.

Only the packages of ``_MODEL_PACKAGES`` (models/__init__.py) count. Their registrations are read
from the source of ``models/<folder>/__init__.py`` (``@register_model`` functions and
``register_model("name", ...)`` calls), so a launcher starts without importing MindSpore; the live
registry is imported only for a package where no registration was found that way.
"""
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _registered_name(node):
    """Registry name declared by a decorator or call node ``register_model[(...)]``, or None."""
    target = node.func if isinstance(node, ast.Call) else node
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
    if name != "register_model":
        return None
    if isinstance(node, ast.Call):
        for arg in [*node.args[:1], *(k.value for k in node.keywords if k.arg == "name")]:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                return arg.value
    return ""  # the decorated function's own name


def registered_packages(root=ROOT):
    """Folders named in ``_MODEL_PACKAGES`` of models/__init__.py (what the registry imports)."""
    tree = ast.parse((root / "models" / "__init__.py").read_text())
    for node in ast.walk(tree):
        targets = [getattr(t, "id", None) for t in getattr(node, "targets", ())]
        if isinstance(node, ast.Assign) and "_MODEL_PACKAGES" in targets:
            return [pkg.split(".", 1)[1] for pkg in ast.literal_eval(node.value)]
    raise LookupError("models/__init__.py defines no _MODEL_PACKAGES")


def static_registry(root=ROOT):
    """{registry name: folder} declared in the source of every registered model package, and the
    packages where nothing was found (registered some other way)."""
    names, unknown = {}, []
    for folder in registered_packages(root):
        init = root / "models" / folder / "__init__.py"
        before = len(names)
        for node in ast.walk(ast.parse(init.read_text(), str(init))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for deco in node.decorator_list:
                    found = _registered_name(deco)
                    if found is not None:
                        names[found or node.name] = folder
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                found = _registered_name(node.value)
                if found:
                    names[found] = folder
        if len(names) == before:
            unknown.append(folder)
    return names, unknown


def live_registry():
    """{registry name: folder} from the imported registry (slow: imports MindSpore)."""
    sys.path.insert(0, str(ROOT))
    import models

    return {name: models._REGISTRY[name].__module__.split(".")[1] for name in models.list_models()}


def resolve(name, root=ROOT):
    """(folder, registry name or None); raises LookupError naming the valid names."""
    folders = registered_packages(root)
    if name in folders:
        return name, None
    registry, unknown = static_registry(root)
    if unknown and name not in registry:
        registry = live_registry()  # a package registers its variants in a way not parsed here
    if name in registry:
        return registry[name], name
    raise LookupError(f"unknown model '{name}': expected an exact model folder ({', '.join(folders)}) "
                      f"or registry name ({', '.join(sorted(registry))})")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    if len(argv) != 1 or argv[0].startswith("-"):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        folder, variant = resolve(argv[0])
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"models/{folder}" + (f" {variant}" if variant else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
