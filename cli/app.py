"""The `codream` command line: one module per command group, loaded when used.

Each group lives in its own module (``cli/*_cmds.py``) and imports what it needs at the top.
The root loads a group's module only when that group runs, so `codream devnet status` does not
pay for importing PyTorch. ``COMMANDS`` below is the complete list of those modules.
"""
from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

import typer
import typer.main
from typer import _click
from typer.core import TyperCommand, TyperGroup

# name -> (module, attribute, one-line help); the attribute is a Typer app or a function
COMMANDS: dict[str, tuple[str, str, str]] = {
    "account": ("cli.account_cmds", "app", "Encrypted keystores."),
    "arithmetic": ("cli.arithmetic_cmds", "arithmetic_cmd", "This machine's receipt arithmetic (CPU kernels, canary)."),
    "bench": ("cli.bench_cmds", "app", "Benchmarks; each prints JSON."),
    "claim": ("cli.network_cmds", "claim", "Withdraw everything claimable for the account."),
    "dapp": ("cli.network_cmds", "dapp", "Serve the dapp on http://HOST:PORT/."),
    "demo": ("cli.demo_cmds", "demo", "Run a full network round on a local devnet."),
    "deploy": ("cli.network_cmds", "deploy", "Deploy CoDreamMarket and write its deployment record."),
    "devnet": ("cli.devnet_cmds", "app", "A local devnet: anvil + the IPFS dev node."),
    "ipfs": ("cli.ipfs_cmds", "app", "Content addressing and the IPFS node."),
    "miner": ("cli.miner_cmds", "app", "Mine dreams."),
    "rewards": ("cli.network_cmds", "rewards", "Claimable balance, stake, pending bonds, history."),
    "similarity": ("cli.similarity_cmds", "similarity", "Which owners gain from co-dreaming: similarity from dreams."),
    "task": ("cli.task_cmds", "app", "Task owners: bring your own model, create tasks, reveal evals, harvest."),
    "teacher": ("cli.teacher_cmds", "app", "Train reference teachers (task owners)."),
    "verifier": ("cli.verifier_cmds", "app", "Validate and score bundles."),
}


def command_of(obj, name: str) -> _click.Command:
    """The click command of a Typer app, or of a plain function (a one-command app)."""
    if not isinstance(obj, typer.Typer):
        single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        single.command(name)(obj)
        obj = single
    cmd = typer.main.get_command(obj)
    cmd.name = name
    return cmd


class LazyGroup(TyperGroup):
    """Lists every command from ``COMMANDS``; imports a command's module only to run it."""

    def list_commands(self, ctx):
        return sorted(set(self.commands) | set(COMMANDS))

    def _load(self, name: str) -> None:
        if name in COMMANDS and name not in self.commands:
            module, attr, _ = COMMANDS[name]
            self.commands[name] = command_of(getattr(importlib.import_module(module), attr), name)

    def get_command(self, ctx, name):
        if name in self.commands or name not in COMMANDS:
            return self.commands.get(name)
        # listing help: a stand-in with the one-line help, so `codream --help` stays fast
        return TyperCommand(name, help=COMMANDS[name][2], short_help=COMMANDS[name][2])

    def resolve_command(self, ctx, args):
        if args:
            self._load(args[0])
        return super().resolve_command(ctx, args)


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"codream {version('codream-network')}")
        except PackageNotFoundError:
            typer.echo("codream (not installed)")
        raise typer.Exit()


app = typer.Typer(cls=LazyGroup, help="CoDream Network: mine dreams, verify them, get paid.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  context_settings={"help_option_names": ["-h", "--help"]})


@app.callback()
def root(_version_flag: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                            help="Print the version and exit.")):
    """CoDream Network: mine dreams, verify them, get paid."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
