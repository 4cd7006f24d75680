"""Every custom error the contracts declare maps to a sentence and a command to run next
(codream/chain.py HINTS): the table is checked against the Solidity source, so a new
`error X(...)` without a hint fails here. The commands must exist, with the options they name."""
from __future__ import annotations

import re
import shlex

import pytest
import typer.main
from typer import _click
from typer.core import TyperGroup

from cli.app import app
from codream.chain import HINTS, TxReverted, describe_revert
from tests.conftest import REPO

ERROR = re.compile(r"\berror\s+([A-Z]\w*)\s*\(([^)]*)\)\s*;")


def declared_errors() -> dict[str, list[tuple[str, str, str]]]:
    """(name -> [(file, type, argument name)...]) for every `error X(...)` under contracts/;
    a name declared twice (two contracts) appears once per declaration, keyed name@file."""
    out = {}
    for path in sorted((REPO / "contracts").rglob("*.sol")):
        text = re.sub(r"//[^\n]*|/\*.*?\*/", "", path.read_text(), flags=re.S)
        for name, params in ERROR.findall(text):
            args = [p.split() for p in params.split(",") if p.strip()]
            out[f"{name}@{path.relative_to(REPO)}"] = [(t[0], t[-1]) for t in args]
    return out


ERRORS = declared_errors()


def sample(solidity_type: str):
    """A plausible decoded value for an argument of this type (as eth_abi returns it)."""
    if solidity_type == "address":
        return "0x" + "ab" * 20
    if solidity_type.startswith("bytes"):
        return b"\x01" * 32
    if solidity_type == "string":
        return "windows below minWindow"
    if solidity_type.startswith("int"):
        return -20000
    return 3  # uint*, and enums (Phase, AppealStage) as their index


ROOT = typer.main.get_command(app)


def resolve(words: list[str]):
    """The click command `codream WORDS...` runs, and the words left for it."""
    cmd, ctx = ROOT, _click.Context(ROOT, info_name="codream")
    while words and isinstance(cmd, TyperGroup) and not words[0].startswith("-"):
        name, cmd, words = cmd.resolve_command(ctx, words)
        ctx = _click.Context(cmd, info_name=name, parent=ctx)
    return cmd, words


def test_the_contracts_declare_errors_and_the_parser_finds_them():
    names = {k.split("@")[0] for k in ERRORS}
    assert {"NotUnbonding", "NoStake", "WrongPhase", "SlotOutOfRange", "WrongAppealStage"} <= names
    assert len(names) > 60


@pytest.mark.parametrize("key", sorted(ERRORS))
def test_every_custom_error_has_a_sentence_and_a_next_command(key):
    name = key.split("@")[0]
    assert name in HINTS, f"{key}: no hint in codream/chain.py HINTS (a sentence and the command to run next)"
    args = {arg: sample(t) for t, arg in ERRORS[key]}
    hint = describe_revert(name, args)
    assert hint is not None, f"{key}: its hint fails on the declared arguments {sorted(args)}"
    sentence, command = hint
    assert len(sentence) > 15 and "\n" not in sentence
    words = shlex.split(command)
    assert words[0] == "codream", f"{key}: the next step is a codream command, got {command!r}"
    cmd, rest = resolve(words[1:])
    assert not isinstance(cmd, TyperGroup) or rest == ["--version"], f"{key}: {command!r} names no command"
    known = {o for p in cmd.params for o in (*getattr(p, "opts", []), *getattr(p, "secondary_opts", []))}
    for word in rest:
        if word.startswith("--"):
            assert word in known | {"--help"}, f"{key}: `{command}` — {cmd.name} has no option {word}"


def test_no_hint_is_left_over_for_an_error_no_contract_declares():
    declared = {k.split("@")[0] for k in ERRORS}
    assert set(HINTS) <= declared, sorted(set(HINTS) - declared)


def test_a_revert_reads_as_one_line_with_its_next_step():
    who = "0x" + "ab" * 20
    msg = str(TxReverted("withdrawStake", "NotUnbonding", {"verifier": who}))
    assert "\n" not in msg and "not unbonding" in msg and "next: `codream verifier unbond`" in msg
    msg = str(TxReverted("requestUnbond", "NoStake", {"verifier": who}))
    assert "has no stake" in msg and "next: `codream verifier status`" in msg
    assert str(TxReverted("f", "SomethingNew", {"x": 1})) == "f reverted: SomethingNew(x=1)"
