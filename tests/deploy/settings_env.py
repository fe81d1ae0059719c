"""Which environment variables platform_site/settings.py reads, found in its source (not by running it,
so branches not taken with the current environment are seen too)."""

import ast

from tests.conftest import REPO_ROOT

SETTINGS = REPO_ROOT / "platform_site" / "settings.py"
# Placeholder for the formatted part of f-string names (PGBACKREST_REPO{_n}_TYPE -> PGBACKREST_REPO1_TYPE).
FORMATTED_VALUE = "1"


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = [part.value if isinstance(part, ast.Constant) else FORMATTED_VALUE for part in node.values]
        return "".join(parts)
    return None


def _reads_environment(func: ast.expr, helpers: set[str]) -> bool:
    """env(...), env.str/int/...(...), or a settings-module helper that passes its name on to env."""
    if isinstance(func, ast.Name):
        return func.id == "env" or func.id in helpers
    return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "env"


def _helpers(tree: ast.Module) -> set[str]:
    """Module-level functions whose first parameter is handed to an env call (e.g. _required_secret)."""
    helpers = set()
    for function in tree.body:
        if not isinstance(function, ast.FunctionDef) or not function.args.args:
            continue
        parameter = function.args.args[0].arg
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Call)
                and _reads_environment(node.func, set())
                and node.args
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id == parameter
            ):
                helpers.add(function.name)
    return helpers


def settings_variables(source: str | None = None) -> dict[str, str]:
    """{variable: how it is read} for every environment variable the settings source reads."""
    tree = ast.parse(source if source is not None else SETTINGS.read_text())
    helpers = _helpers(tree)
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _reads_environment(node.func, helpers) and node.args:
            name = _name(node.args[0])
            if name:
                found.setdefault(name, ast.unparse(node.func))
        # Names listed in a module constant and read in a loop (REAL_MODE_VARIABLES).
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id.endswith("_VARIABLES") for target in node.targets
        ):
            for element in getattr(node.value, "elts", []):
                name = _name(element)
                if name:
                    found.setdefault(name, "REAL_MODE_VARIABLES")
    return found


def required_in_real_mode(source: str | None = None) -> set[str]:
    """Variables without which a real-mode process refuses to start or is not real: the secrets read
    through _required_secret and the variables that switch real mode on."""
    tree = ast.parse(source if source is not None else SETTINGS.read_text())
    required = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_required_secret":
            required.add(_name(node.args[0]))
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "REAL_MODE_VARIABLES" for target in node.targets
        ):
            required.update(_name(element) for element in node.value.elts)
    return required - {None}
