"""The import graph: configuration and infrastructure never import a domain app.

platform_site (configuration), dbrouting, observability and core serve every app; an arrow from them
into tenants/apikeys/webhooks/cdn/backups/console would tie the platform to one capability (apps supply
their own metric sources and call named recording functions instead). The graph is built from the
source with `ast`, so a lazy import inside a function counts as much as one at the top.
"""

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

INFRASTRUCTURE = ("platform_site", "dbrouting", "observability", "core")
DOMAIN_APPS = frozenset({"tenants", "apikeys", "webhooks", "cdn", "backups", "console"})


def imported_modules(source: str, *, package: str) -> set[str]:
    """Absolute names of every module `source` imports (relative imports resolved against `package`)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
    return names


def arrows_into_domain(root: Path) -> list[tuple[str, str]]:
    arrows = []
    for top in INFRASTRUCTURE:
        for path in sorted((root / top).rglob("*.py")):
            relative = path.relative_to(root).with_suffix("")
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            package = ".".join(relative.parts[:-1])
            for module in imported_modules(path.read_text(), package=package):
                if module.split(".")[0] in DOMAIN_APPS:
                    arrows.append((".".join(parts), module))
    return arrows


def test_infrastructure_never_imports_a_domain_app():
    assert arrows_into_domain(REPO_ROOT) == []


def test_the_graph_sees_lazy_and_relative_imports(tmp_path):
    # The check above must be able to fail: a lazy import in a function and a relative one both count.
    (tmp_path / "observability").mkdir()
    (tmp_path / "observability" / "metrics.py").write_text(
        "from . import collectors\n\ndef f():\n    from tenants.usage import usage_record\n"
    )
    for top in INFRASTRUCTURE[:1] + INFRASTRUCTURE[2:]:
        (tmp_path / top).mkdir(exist_ok=True)
    (tmp_path / "dbrouting").mkdir()
    (tmp_path / "dbrouting" / "views.py").write_text("import backups.models as m\n")
    assert arrows_into_domain(tmp_path) == [
        ("dbrouting.views", "backups.models"),
        ("observability.metrics", "tenants.usage"),
    ]
    assert imported_modules("from ..routing import state", package="dbrouting.sub") == {"dbrouting.routing"}
