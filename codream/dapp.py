"""`codream dapp`: serve the static dapp and its configuration (no backend logic: the page
talks to the chain itself). On a devnet (chain 31337) the config also lists anvil's
public dev accounts, so the page can act as one of them."""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from . import config
from .deploy import DeployError, load_record

DAPP = config.REPO_ROOT / "dapp"
ETHERS = config.REPO_ROOT / "node_modules" / "ethers" / "dist" / "ethers.min.js"
DEV_LABELS = {0: "owner", 1: "miner honest", 2: "miner noise", 3: "miner copier", 4: "verifier 1",
              5: "verifier 2", 6: "verifier 3"}


def page_config(deployment: str | None, rpc_url: str | None, gateway: str) -> dict:
    try:
        rec = load_record(deployment)
    except DeployError as exc:
        return {"error": str(exc)}
    c = rec["contracts"]["CoDreamMarket"]
    out = {"chainId": rec["chain_id"], "market": c["address"], "abi": c["abi"], "deployBlock": c.get("block", 0),
           "rpcUrl": rpc_url or rec.get("rpc_url") or config.rpc_url(), "gateway": gateway, "devAccounts": []}
    if rec["chain_id"] == 31337:
        from eth_account import Account

        from .devnet import dev_private_key

        for i in range(10):
            key = dev_private_key(i)
            out["devAccounts"].append({"label": DEV_LABELS.get(i, f"dev:{i}"),
                                       "address": Account.from_key(key).address, "privateKey": key})
    return out


def make_app(deployment: str | None = None, rpc_url: str | None = None,
             gateway: str = "http://127.0.0.1:5001/ipfs/") -> web.Application:
    if not ETHERS.exists():
        raise FileNotFoundError(f"{ETHERS} missing: run `make setup` (installs ethers from npm)")

    async def cfg(request):  # read per request: the devnet may be redeployed while the page runs
        return web.json_response(page_config(deployment, rpc_url, gateway))

    def static(path: Path, ctype: str):
        async def handler(request):
            return web.FileResponse(path, headers={"Content-Type": ctype, "Cache-Control": "no-cache"})
        return handler

    app = web.Application()
    app.router.add_get("/", static(DAPP / "index.html", "text/html"))
    app.router.add_get("/app.js", static(DAPP / "app.js", "text/javascript"))
    app.router.add_get("/style.css", static(DAPP / "style.css", "text/css"))
    app.router.add_get("/vendor/ethers.min.js", static(ETHERS, "text/javascript"))
    app.router.add_get("/config.json", cfg)
    return app


def serve(host: str = "127.0.0.1", port: int = 8080, **kw) -> None:
    print(f"CoDream dapp on http://{host}:{port}/", flush=True)
    web.run_app(make_app(**kw), host=host, port=port, print=None, access_log=None)
