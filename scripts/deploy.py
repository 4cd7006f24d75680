"""Deploy CoDreamMarket: `brownie run scripts/deploy.py [--network NAME]`.

Accounts: on `development` brownie's unlocked dev account; elsewhere an encrypted brownie
keystore named by $CODREAM_DEPLOYER (default `deployer`; create it with
`brownie accounts new deployer`), its password prompted for or taken from
$CODREAM_KEYSTORE_PASSWORD. Writes the deployment record agents and the dapp read
($CODREAM_HOME/devnet/deployment.json on development, else deployments/<network>.json).
"""
import os

from brownie import CoDreamMarket, StakeRegistry, accounts, network

from codream.deployment import write_record


def _account():
    if network.show_active() in ("development", "anvil"):
        return accounts[0]
    name = os.environ.get("CODREAM_DEPLOYER", "deployer")
    return accounts.load(name, password=os.environ.get("CODREAM_KEYSTORE_PASSWORD"))


def main():
    acct = _account()
    market = CoDreamMarket.deploy({"from": acct})
    tx = market.tx
    path = write_record(network.show_active(), network.chain.id,
                        {"address": market.address, "abi": CoDreamMarket.abi, "block": tx.block_number, "tx": tx.txid},
                        {"address": market.registry(), "abi": StakeRegistry.abi}, acct.address,
                        network.web3.provider.endpoint_uri)
    print(f"CoDreamMarket at {market.address} (chain {network.chain.id}); record: {path}")
    return market
