"""The local development chain's public facts: its chain id and anvil's well-known dev
accounts (derived from a public test mnemonic: never use them for real funds)."""
from __future__ import annotations

from eth_account import Account

DEVNET_CHAIN_ID = 31337
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNTS = 40  # funded accounts the devnet starts with (the adversarial round uses ~30)


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
