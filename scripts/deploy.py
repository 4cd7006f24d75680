"""Deploy CoDreamMarket (protocol v3, production parameters; it deploys its StakeRegistry and
CoDreamAppeals) and a CoDreamLens: `brownie run scripts/deploy.py [--network NAME]`.

Accounts: on `development` brownie's unlocked dev account; elsewhere an encrypted brownie
keystore named by $CODREAM_DEPLOYER (default `deployer`; create it with
`brownie accounts new deployer`), its password prompted for or taken from
$CODREAM_KEYSTORE_PASSWORD. Writes the deployment record agents and the dapp read
($CODREAM_HOME/devnet/deployment.json on development, else deployments/<network>.json).
"""
import os

from brownie import CoDreamAppeals, CoDreamLens, CoDreamMarket, StakeRegistry, accounts, network

from codream.deployment import write_record
from codream.protocol import PARAMS


def _account():
    if network.show_active() in ("development", "anvil"):
        return accounts[0]
    name = os.environ.get("CODREAM_DEPLOYER", "deployer")
    return accounts.load(name, password=os.environ.get("CODREAM_KEYSTORE_PASSWORD"))


def main(params: str = "production"):
    acct = _account()
    market = CoDreamMarket.deploy(PARAMS[params].as_tuple(), {"from": acct})
    lens = CoDreamLens.deploy(market.address, {"from": acct})
    tx = market.tx
    path = write_record(network.show_active(), network.chain.id, {
        "CoDreamMarket": {"address": market.address, "abi": CoDreamMarket.abi, "block": tx.block_number,
                          "tx": tx.txid},
        "StakeRegistry": {"address": market.registry(), "abi": StakeRegistry.abi},
        "CoDreamAppeals": {"address": market.appeals(), "abi": CoDreamAppeals.abi},
        "CoDreamLens": {"address": lens.address, "abi": CoDreamLens.abi},
    }, acct.address, network.web3.provider.endpoint_uri, params)
    print(f"CoDreamMarket at {market.address} (chain {network.chain.id}); record: {path}")
    return market
