"""`codream dapp`: serve the static dapp and its configuration (no backend logic: the page
talks to the chain itself). The configuration carries the protocol facts the page needs
(phase names, sentinel scores) so the page never copies them. On a devnet it also lists
anvil's public dev accounts, so the page can act as one of them."""
from __future__ import annotations

import socket
from pathlib import Path

from aiohttp import web

from codream import config
from codream.bundle import BundleError, read as read_bundle
from codream.deployment import DeploymentError, load_record
from codream.devchain import dev_address, dev_private_key, is_devnet
from codream.preview import grid_png
from codream.market import PHASE_DEADLINES, STATUS_NOTES
from codream.protocol import INVALID, NO_EVAL, BurnReason, Outcome, Phase, Status, Verdict
from ipfs import CID, InvalidCidError, IpfsClient, IpfsError

DAPP = config.REPO_ROOT / "dapp"
ETHERS = config.REPO_ROOT / "node_modules" / "ethers" / "dist" / "ethers.min.js"
MAX_PREVIEW_BYTES = 64 << 20


class DappError(RuntimeError):
    """The dapp server cannot start; the message says why."""


HARVEST_COMMAND = "codream task harvest {id} --out harvest-task-{id}"  # what the page tells a task's owners
DEV_LABELS = {0: "owner", 1: "miner honest", 2: "miner noise", 3: "miner copier", 4: "verifier 1",
              5: "verifier 2", 6: "verifier 3"}


def page_config(deployment: str | None, rpc_url: str | None, gateway: str) -> dict:
    try:
        rec = load_record(deployment)
    except DeploymentError as exc:
        return {"error": str(exc)}
    cs = rec["contracts"]
    c, r = cs["CoDreamMarket"], cs["StakeRegistry"]
    out = {"chainId": rec["chain_id"], "market": c["address"], "abi": c["abi"], "deployBlock": c.get("block", 0),
           "registry": r["address"], "registryAbi": r["abi"],
           "lens": cs["CoDreamLens"]["address"], "lensAbi": cs["CoDreamLens"]["abi"],
           "appeals": cs["CoDreamAppeals"]["address"], "appealsAbi": cs["CoDreamAppeals"]["abi"],
           "rpcUrl": rpc_url or rec.get("rpc_url") or config.rpc_url(), "gateway": gateway, "devAccounts": [],
           "harvestCommand": HARVEST_COMMAND,
           "protocol": {"phases": [p.human for p in Phase], "statuses": [s.human for s in Status],
                        "statusNotes": {s.human: note for s, note in STATUS_NOTES.items()},
                        "deadlines": {int(p): key for p, key in PHASE_DEADLINES.items()},
                        "verdicts": [v.human for v in Verdict], "outcomes": [o.human for o in Outcome],
                        "burnReasons": [b.human for b in BurnReason],
                        "invalid": INVALID, "noEval": NO_EVAL, "finalized": int(Phase.FINALIZED)}}
    if is_devnet(rec["chain_id"]):
        for i in range(10):  # the first ten: the demo's parties and a few more
            out["devAccounts"].append({"label": DEV_LABELS.get(i, f"dev:{i}"), "address": dev_address(i),
                                       "privateKey": dev_private_key(i)})
    return out


def preview_png(ipfs: IpfsClient, cid: str) -> bytes:
    """A labelled grid of the first 64 dreams of a bundle (fetched, CID-verified, header checked)."""
    images, _ = read_bundle(ipfs.cat(cid, max_bytes=MAX_PREVIEW_BYTES))
    return grid_png(images, None, cols=16, max_images=64)


def make_app(deployment: str | None = None, rpc_url: str | None = None,
             gateway: str = "http://127.0.0.1:5001/ipfs/", ipfs_api: str | None = None) -> web.Application:
    if not ETHERS.exists():
        raise FileNotFoundError(f"{ETHERS} missing: run `make setup` (installs ethers from npm)")
    ipfs = IpfsClient(ipfs_api, timeout=30)

    async def cfg(request):  # read per request: the devnet may be redeployed while the page runs
        return web.json_response(page_config(deployment, rpc_url, gateway))

    async def preview(request):
        try:
            cid = str(CID.parse(request.match_info["cid"]))
        except InvalidCidError:
            return web.Response(status=400, text="not a CID")
        try:
            png = await request.loop.run_in_executor(None, preview_png, ipfs, cid)
        except BundleError as exc:
            return web.Response(status=422, text=f"not a dream bundle: {exc}")
        except IpfsError as exc:
            return web.Response(status=502, text=f"cannot fetch {cid}: {exc}")
        return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "max-age=3600"})

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
    app.router.add_get("/preview/{cid}.png", preview)
    return app


def serve(host: str = "127.0.0.1", port: int = 8080, **kw) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise DappError(f"cannot serve on {host}:{port} ({exc.strerror}): another program uses the port; "
                            f"pick another with --port") from None
    print(f"CoDream dapp on http://{host}:{port}/", flush=True)
    web.run_app(make_app(**kw), host=host, port=port, print=None, access_log=None)
