"""`codream demo` / `make demo`: what the network can do today, end to end on a devnet."""
from __future__ import annotations

import os
import tempfile

from rich.console import Console

from . import devnet


def run(keep_up: bool = False) -> None:
    con = Console()
    con.rule("CoDream Network demo")
    con.print("[yellow]The full network round (contracts, miners, verifiers, settlement) is not "
              "built yet. This demo runs what exists: devnet up, an IPFS round trip, devnet down.[/]")
    st = devnet.up()
    con.print(f"devnet up: anvil chain id {st['anvil']['chain_id']} at {st['anvil']['rpc_url']}, "
              f"IPFS node {st['ipfs']['version']} at {st['ipfs']['api']}")
    try:
        from ipfs import IpfsClient, cid_of_bytes

        data = os.urandom(3 << 20)
        client = IpfsClient(st["ipfs"]["api"])
        cid = client.add_bytes(data)
        back = client.cat(cid)
        con.print(f"IPFS: added 3 MiB -> {cid} (local CID {cid_of_bytes(data)}), "
                  f"fetched back byte-identical: {back == data}, pinned: {client.is_pinned(cid)}")
        con.print(f"gateway: {st['ipfs']['gateway']}{cid}")
    finally:
        if keep_up:
            con.print("devnet left running: `codream devnet down` stops it")
        else:
            devnet.down()
            con.print("devnet down")
