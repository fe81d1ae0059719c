"""The fault table of tests/hardening/README.md names tests that exist (it cannot silently rot)."""

import ast
import re
from pathlib import Path

from tests.conftest import REPO_ROOT

README = Path(__file__).with_name("README.md")


def test_every_test_the_readme_names_exists():
    named = re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)`", README.read_text())
    assert len(named) >= 12
    missing = []
    for path, name in named:
        tree = ast.parse((REPO_ROOT / path).read_text())
        if name not in {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}:
            missing.append(f"{path}::{name}")
    assert not missing, f"README names tests that do not exist: {missing}"
