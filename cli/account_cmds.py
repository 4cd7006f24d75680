"""`codream account ...`: encrypted keystores."""
from __future__ import annotations

import getpass
import json
import os
from pathlib import Path

import typer
from web3 import Web3

from codream.chain import new_keystore

from .common import emit, fail

app = typer.Typer(help="Encrypted keystores.", no_args_is_help=True)


@app.command("new")
def account_new(path: Path = typer.Argument(..., help="Keystore file to create.")):
    """Create an encrypted keystore (password from $CODREAM_KEYSTORE_PASSWORD or a prompt)."""
    if path.exists():
        fail(f"{path} exists; refusing to overwrite a keystore")
    path.parent.mkdir(parents=True, exist_ok=True)
    pw = os.environ.get("CODREAM_KEYSTORE_PASSWORD")
    if pw is None:
        pw = getpass.getpass("new keystore password: ")
        if pw != getpass.getpass("repeat the password: "):
            fail("the two passwords differ; nothing was written", 2)
    if not pw:
        fail("an empty password would leave the key unprotected; choose one", 2)
    emit({"address": new_keystore(path, pw), "keystore": str(path),
          "next": f"fund it (devnet: `codream devnet fund <address>`) and use it with --account {path}"})


@app.command("address")
def account_address(path: Path = typer.Argument(..., exists=True, dir_okay=False, help="A keystore file."),
                    plain: bool = typer.Option(False, "--plain", help="Print only the address (for scripts).")):
    """Print the address of a keystore (no password needed)."""
    try:
        address = Web3.to_checksum_address("0x" + json.loads(path.read_text())["address"].removeprefix("0x"))
    except (ValueError, KeyError, TypeError):
        fail(f"{path} is not a keystore file")
    if plain:
        typer.echo(address)
    else:
        emit({"address": address, "keystore": str(path)})
