"""Static checks of the Terraform module deploy/terraform/cloudfront (no terraform binary or AWS here):
every file parses with python-hcl2, and every reference (var., local., resources, data sources) names
something the module declares; every variable is used and documented, every output documented."""

import re

import hcl2
import pytest

from tests.conftest import REPO_ROOT

MODULE = REPO_ROOT / "deploy" / "terraform" / "cloudfront"


def _unquote(name: str) -> str:
    return name.strip('"')


def _strings(node):
    """Every string in a parsed HCL tree (expressions are kept as their source text)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            if key != "__comments__":
                yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def parse_module(files: dict[str, str]) -> dict:
    """Declarations and references of a module given as {file name: HCL text}."""
    declared = {"variable": {}, "output": {}, "local": set(), "resource": set(), "data": set()}
    strings = []
    for text in files.values():
        tree = hcl2.loads(text)
        for block in tree.get("variable", []):
            for variable, body in block.items():
                declared["variable"][_unquote(variable)] = body
        for block in tree.get("output", []):
            for output, body in block.items():
                declared["output"][_unquote(output)] = body
        for block in tree.get("locals", []):
            declared["local"].update(key for key in block if not key.startswith("__"))
        for kind in ("resource", "data"):
            for block in tree.get(kind, []):
                for resource_type, instances in block.items():
                    for instance in instances:
                        if not instance.startswith("__"):
                            declared[kind].add(f"{_unquote(resource_type)}.{_unquote(instance)}")
        strings += list(_strings({k: v for k, v in tree.items() if k != "terraform"}))
    text = "\n".join(strings)
    references = {
        "variable": set(re.findall(r"\bvar\.(\w+)", text)),
        "local": set(re.findall(r"\blocal\.(\w+)", text)),
        "data": {f"{t}.{n}" for t, n in re.findall(r"\bdata\.(aws_\w+)\.(\w+)", text)},
        "resource": {f"{t}.{n}" for t, n in re.findall(r"(?<![\w.])(aws_\w+)\.(\w+)\.\w+", text)},
    }
    return {"declared": declared, "references": references}


def undeclared(module: dict) -> dict[str, set[str]]:
    declared, references = module["declared"], module["references"]
    return {
        kind: missing
        for kind, missing in (
            ("variable", references["variable"] - set(declared["variable"])),
            ("local", references["local"] - declared["local"]),
            ("data", references["data"] - declared["data"]),
            ("resource", references["resource"] - declared["resource"]),
        )
        if missing
    }


@pytest.fixture(scope="module")
def module() -> dict:
    return parse_module({path.name: path.read_text() for path in sorted(MODULE.glob("*.tf"))})


def test_every_file_parses_and_the_module_declares_its_parts(module):
    assert {path.name for path in MODULE.glob("*.tf")} == {"main.tf", "variables.tf", "outputs.tf", "versions.tf"}
    declared = module["declared"]
    assert "aws_cloudfront_distribution.this" in declared["resource"]
    assert {"name", "assets_bucket_name", "origin_domain_name"} <= set(declared["variable"])
    assert "distribution_id" in declared["output"]


def test_every_reference_names_a_declaration(module):
    assert module["references"]["variable"] and module["references"]["resource"]
    assert undeclared(module) == {}


def test_every_variable_is_used_typed_and_described(module):
    declared = module["declared"]["variable"]
    assert set(declared) == module["references"]["variable"], "declared but never used"
    for name, body in declared.items():
        assert body.get("type") and body.get("description"), name


def test_every_output_is_described_and_names_a_resource(module):
    for name, body in module["declared"]["output"].items():
        assert body.get("description"), name
        assert re.match(r"^\$\{(aws_|data\.)", body["value"]), name


def test_the_provider_is_pinned():
    versions = hcl2.loads((MODULE / "versions.tf").read_text())["terraform"][0]
    aws = versions["required_providers"][0]["aws"]
    assert _unquote(aws["source"]) == "hashicorp/aws" and _unquote(aws["version"]).startswith("~>")


def test_the_check_catches_an_undeclared_variable_and_resource():
    broken = parse_module(
        {
            "main.tf": 'resource "aws_s3_bucket" "b" {\n  bucket = var.missing\n}\n'
            'output "x" {\n  value = aws_s3_bucket.other.arn\n}\n'
        }
    )
    assert undeclared(broken) == {"variable": {"missing"}, "resource": {"aws_s3_bucket.other"}}


def test_a_syntax_error_is_caught():
    with pytest.raises(Exception):  # noqa: B017 - lark's parse errors have no common public base
        hcl2.loads('resource "aws_s3_bucket" "b" {\n  bucket = \n')
