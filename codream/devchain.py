"""The local development chain's public facts: its chain id and anvil's well-known dev
accounts (derived from a public test mnemonic: never use them for real funds), a free loopback
port for a devnet to listen on, and a workaround for one anvil quirk."""
from __future__ import annotations

import socket
import time

from eth_account import Account

DEVNET_CHAIN_ID = 31337
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNTS = 40  # funded accounts the devnet starts with (the adversarial round uses 39)


def dev_private_key(index: int = 0) -> str:
    """Private key of anvil's dev account ``index`` (from the public test mnemonic)."""
    if not 0 <= index < 1000:
        raise ValueError(f"dev account index must be 0..999, got {index}")
    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}").key.hex()


def dev_address(index: int = 0) -> str:
    return Account.from_key(dev_private_key(index)).address


def is_devnet(chain_id: int) -> bool:
    return chain_id == DEVNET_CHAIN_ID


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def patient_receipts(web3) -> None:
    """anvil can report a sender's next nonce a moment before it serves the receipt of a long
    transaction; brownie then calls the mined transaction "dropped". Make receipt lookups wait for
    a transaction anvil already knows (the gas bench and the brownie tests)."""
    from web3.exceptions import TransactionNotFound

    eth = web3.eth
    if getattr(eth, "codream_patient_receipts", False):
        return
    lookup = eth.get_transaction_receipt

    def get_transaction_receipt(txid):
        try:
            return lookup(txid)
        except TransactionNotFound:
            eth.get_transaction(txid)  # raises TransactionNotFound if anvil never saw it
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                time.sleep(0.05)
                try:
                    return lookup(txid)
                except TransactionNotFound:
                    continue
            raise

    eth.get_transaction_receipt = get_transaction_receipt
    eth.codream_patient_receipts = True  # our marker: patched once
