"""The layering rule, checked on the source: the core library (`codream/`) imports only `ipfs/`
and third-party packages; the roles (`miner/`, `verifier/`, `owner/`) import only the core and
`ipfs/`; orchestration (`rounds/`: devnets, whole rounds, the dream benchmarks) imports the roles
and everything below; the application layer (`cli/`) may import anything and nothing imports it,
tests included: a test reaches the app layer only through its entry point, `cli.app`. Every
import of project code sits at the top of its module, so readers and tools see every edge.
And protocol facts have one home each."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from cli.app import COMMANDS
from tests.conftest import REPO

PROJECT = ("ipfs", "codream", "miner", "verifier", "owner", "rounds", "cli")
ALLOWED = {
    "ipfs": {"ipfs"},
    "codream": {"codream", "ipfs"},
    "miner": {"miner", "codream", "ipfs"},
    "verifier": {"verifier", "codream", "ipfs"},
    "owner": {"owner", "codream", "ipfs"},
    "rounds": {"rounds", "miner", "verifier", "owner", "codream", "ipfs"},
    "cli": set(PROJECT),
}


def modules():
    for pkg in PROJECT:
        for path in sorted((REPO / pkg).rglob("*.py")):
            yield pkg, path


def project_imports(path: Path, pkg: str):
    """(imported top-level package, line, at module level?) for every project import."""
    tree = ast.parse(path.read_text(), str(path))
    top_level = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [pkg if node.level else (node.module or "")]
        else:
            continue
        for name in names:
            root = name.split(".")[0]
            if root in PROJECT:
                yield root, node.lineno, id(node) in top_level


@pytest.mark.parametrize("pkg,path", list(modules()), ids=lambda v: str(v).replace(str(REPO) + "/", ""))
def test_imports_follow_the_layers(pkg, path):
    for root, line, at_top in project_imports(path, pkg):
        where = f"{path.relative_to(REPO)}:{line}"
        assert root in ALLOWED[pkg], f"{where}: {pkg}/ may not import {root}/ (allowed: {sorted(ALLOWED[pkg])})"
        assert at_top, f"{where}: import of project code inside a function or block; move it to the top"


def test_nothing_outside_the_app_layer_imports_it():
    for pkg, path in modules():
        if pkg != "cli":
            assert all(root != "cli" for root, _, _ in project_imports(path, pkg)), path


def test_no_module_uses_another_modules_private_names():
    """A leading underscore means "this module's own": no project module imports one from another
    module, nor calls one on another module's object (``chain._rpc``)."""
    for pkg, path in modules():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] in PROJECT):
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                assert not private, f"{where}: imports private {private} from {node.module}"
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                    and isinstance(node.value, ast.Name) and node.value.id not in ("self", "cls", "typer"):
                owner = node.value.id
                assert False, f"{where}: uses {owner}.{node.attr}, a private name of another object's module"


def test_tests_reach_the_app_layer_only_through_its_entry_point():
    """Tests import the logic they check from where it lives (core, roles, rounds); they drive the
    commands through `cli.app`, as a user types them, and import nothing else from `cli/`."""
    for path in sorted((REPO / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
                if node.module == "cli":
                    names = [f"cli.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] == "cli":
                    assert name == "cli.app", f"{path.relative_to(REPO)}:{node.lineno}: imports {name}; " \
                        "move what it tests below the app layer, or drive it through cli.app"


def test_every_lazy_command_module_is_in_the_app_layer_and_exists():
    for name, (module, attr, help_) in COMMANDS.items():
        assert module.startswith("cli."), name
        assert (REPO / (module.replace(".", "/") + ".py")).exists(), module
        assert help_, name


# one home per protocol fact: (pattern, the only file allowed to contain it)
FACTS = [
    (r"\b31337\b", {"codream/devchain.py"}),
    (r"test test test test", {"codream/devchain.py"}),
    (r"-\(?2\s*\*\*\s*31", {"codream/protocol.py"}),  # INVALID
    (r"token_hex\(32\)", {"codream/protocol.py"}),
    (r"fromhex\([^)]*salt", {"codream/protocol.py"}),
    (r"\"-m\",\s*\"cli\"", {"rounds/procs.py"}),
    (r"codream\.cli\b", set()),
    (r"__metadata__", {"codream/bundle.py"}),
]


@pytest.mark.parametrize("pattern,homes", FACTS, ids=[f[0] for f in FACTS])
def test_protocol_facts_have_one_home(pattern, homes):
    found = set()
    for pkg, path in modules():
        if re.search(pattern, path.read_text()):
            found.add(str(path.relative_to(REPO)))
    for path in (REPO / "dapp").glob("*.js"):
        if re.search(pattern, path.read_text()):
            found.add(str(path.relative_to(REPO)))
    assert found <= homes, f"{pattern!r} written outside its home {sorted(homes)}: {sorted(found - homes)}"


def test_the_dapp_builds_no_html_from_strings():
    """Chain- and IPFS-controlled strings must reach the page as text: no innerHTML/outerHTML/
    insertAdjacentHTML/document.write in the dapp (tests/test_dapp.py proves a hostile CID renders as text)."""
    for path in (REPO / "dapp").glob("*.js"):
        text = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
            assert sink not in text, f"{path.name} uses {sink}"


def test_every_command_group_keeps_its_subcommands():
    """typer turns a one-command app into that command; `codream GROUP CMD` must keep working."""
    import importlib

    import typer.main
    from typer.core import TyperGroup

    for name, (module, attr, _) in COMMANDS.items():
        obj = getattr(importlib.import_module(module), attr)
        if hasattr(obj, "registered_commands"):  # a Typer app: a command group
            assert isinstance(typer.main.get_command(obj), TyperGroup), f"`codream {name}` lost its subcommands"
