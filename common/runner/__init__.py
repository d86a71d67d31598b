"""The shared runner: every model's entry points are ``main(command, SPEC)`` over one spec."""
from common.runner.spec import ModelSpec, QuickRecipe

__all__ = ["ModelSpec", "QuickRecipe", "main"]


def main(command, spec, argv=None):
    from common.runner.commands import main as _main

    return _main(command, spec, argv)
