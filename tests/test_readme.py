"""The README and docs/ stay true to the command line: every `codream …` command in their fenced
code blocks names a command that exists (`--help` works for its path, in-process), uses only
options that command has, and gives it no more arguments than it takes; every relative link
resolves to a file (and, with a #fragment, to a heading of it)."""
from __future__ import annotations

import importlib
import re
import shlex
import unicodedata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import COMMANDS, app, command_of
from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
SEPARATORS = re.compile(r"&&|\|\||[;|&]")  # between the commands of one shell line
INVOCATION = re.compile(r"^\s*(?:(?:do|then|else)\s+)?codream\s+(?P<words>.*)$")
REDIRECT = re.compile(r"\s\d?>.*$")


def code_blocks(page: Path):
    return FENCE.findall(page.read_text())


def commands_in(block: str):
    """The argument list of every `codream` invocation in a shell block (continuations joined,
    comments dropped, each command of a `;` / `&&` / `|` / `&` list on its own)."""
    text = block.replace("\\\n", " ")
    lines = [re.sub(r"(^|\s)#.*$", "", line) for line in text.splitlines()]
    while lines:
        line = lines.pop(0)
        # a command substitution is a command of its own; in its place the line has one word
        while inner := re.search(r"\$\(([^()]*)\)|`([^`]*)`", line):
            lines.append(inner.group(1) if inner.group(1) is not None else inner.group(2))
            line = line[:inner.start()] + "SUBSTITUTED" + line[inner.end():]
        for command in SEPARATORS.split(re.sub(r"\d?>&\d", "", line)):
            if m := INVOCATION.match(command):
                yield shlex.split(REDIRECT.sub("", " " + m.group("words")).strip())


def all_commands():
    seen = {}
    for page in PAGES:
        for block in code_blocks(page):
            for argv in commands_in(block):
                seen.setdefault(" ".join(argv), (page.relative_to(REPO).as_posix(), argv))
    return sorted(seen.values(), key=lambda v: (v[0], v[1]))


COMMANDS_FOUND = all_commands()


def test_the_pages_have_commands_to_check():
    readme = [argv for page, argv in COMMANDS_FOUND if page == "README.md"]
    assert len(readme) >= 30, readme  # the quick tour and the round by hand
    assert ["devnet", "up"] in readme and ["task", "wait", "1", "--phase", "finalized"] in readme


_CLICK: dict = {}


def click_command(group: str):
    if group not in _CLICK:
        module, attr, _ = COMMANDS[group]
        _CLICK[group] = command_of(getattr(importlib.import_module(module), attr), group)
    return _CLICK[group]


def resolve(argv: list[str]):
    """(command path, click command, the words after the path)."""
    assert argv and argv[0] in COMMANDS, f"`codream {argv[0] if argv else ''}`: no such command group " \
                                         f"(there are {sorted(COMMANDS)})"
    path, cmd, rest = [argv[0]], click_command(argv[0]), argv[1:]
    while hasattr(cmd, "commands") and rest and not rest[0].startswith("-"):
        sub = cmd.commands.get(rest[0])
        assert sub is not None, f"`codream {' '.join(path)} {rest[0]}`: no such command " \
                                f"(there are {sorted(cmd.commands)})"
        path, cmd, rest = path + [rest[0]], sub, rest[1:]
    return path, cmd, rest


def is_option(word: str) -> bool:
    return word.startswith("-") and word != "-" and not re.match(r"^-\d", word)


@pytest.mark.parametrize("page,argv", COMMANDS_FOUND, ids=[f"{p}: codream {' '.join(a)}" for p, a in COMMANDS_FOUND])
def test_each_command_parses(page, argv):
    path, cmd, rest = resolve(argv)
    shown = f"{page}: `codream {' '.join(argv)}`"
    if hasattr(cmd, "commands"):  # a group: only `codream GROUP` or `codream GROUP --help` on its own
        assert all(w in ("-h", "--help") for w in rest), f"{shown}: `codream {' '.join(path)}` needs a subcommand"
        return
    options = {}
    for p in cmd.params:
        for name in [*p.opts, *getattr(p, "secondary_opts", [])]:
            if name.startswith("-"):
                options[name] = p
    options.update({"--help": None, "-h": None})
    positional, i = [], 0
    while i < len(rest):
        word = rest[i]
        if is_option(word):
            name = word.split("=", 1)[0]
            assert name in options, f"{shown}: `codream {' '.join(path)}` has no option {name} " \
                                    f"(it has {sorted(o for o in options if o.startswith('--'))})"
            p = options[name]
            takes_value = p is not None and not p.is_flag and not getattr(p, "count", False) \
                and name not in getattr(p, "secondary_opts", [])
            i += 2 if takes_value and "=" not in word else 1
        else:
            positional.append(word)
            i += 1
    arguments = [p for p in cmd.params if p.param_type_name == "argument"]
    if all(p.nargs >= 0 for p in arguments):
        most = sum(p.nargs for p in arguments)
        assert len(positional) <= most, f"{shown}: {positional} are more than the {most} argument(s) " \
                                        f"`codream {' '.join(path)}` takes"


def test_help_works_for_every_command_path():
    """`codream PATH --help` exits 0 for every command path the pages use, in this process."""
    paths = sorted({tuple(resolve(argv)[0]) for _, argv in COMMANDS_FOUND})
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, f"`codream {' '.join(path)} --help` exited {result.exit_code}:\n" \
                                      f"{result.output}{result.exception!r}"
        assert "Usage" in result.output


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    return "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LMN").replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(h) for h in re.findall(r"^#{1,6}\s+(.*)$", text, re.M)}


LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(page):
    text = FENCE.sub("", page.read_text())
    checked = 0
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        file, _, fragment = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        assert dest.exists(), f"{page.name}: link {target} points at {dest}, which does not exist"
        if fragment and dest.suffix == ".md":
            assert fragment in anchors(dest), f"{page.name}: link {target}: no heading #{fragment} in {dest.name} " \
                                              f"(there are {sorted(anchors(dest))})"
        checked += 1
    if page.name == "README.md":
        assert checked >= 11  # every docs page is linked from "Where to go next"
        linked = {(page.parent / t.partition("#")[0]).resolve() for t in LINK.findall(text)}
        unlinked = [p.name for p in PAGES[1:] if p.resolve() not in linked]
        assert not unlinked, f"docs pages the README does not link: {unlinked}"
