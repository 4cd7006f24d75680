"""`codream dapp`: serve the static dapp, its configuration and the core's read models as JSON.

The page reads live state (tasks, phases, claimable) and sends transactions through the chain
itself; the money and the scores come from the same read models as the CLI, served here:
``/api/account/ADDRESS.json`` (``codream.accounts.statement``: earned / lost / net per task with
the reasons, withdrawals), ``/api/task/ID.json`` (``codream.market.scores``: every seat's score
against the min gain and the tolerance band), ``/api/network.json`` (``codream.accounts.network``),
and ``/preview/CID.png`` (a bundle's dreams, fetched CID-verified from IPFS). Amounts are decimal
strings of wei (JSON numbers would round them). The configuration carries the protocol facts
the page needs (phase names, sentinel scores) so the page never copies them. On a devnet it also
lists anvil's public dev accounts, so the page can act as one of them."""
from __future__ import annotations

import socket
from collections import OrderedDict
from pathlib import Path

from aiohttp import web

from web3 import Web3

from codream import config
from codream.accounts import network, statement
from codream.bundle import BundleError, read as read_bundle
from codream.chain import Chain, ChainConfig, ChainError
from codream.deployment import DeploymentError, load_record
from codream.devchain import dev_address, dev_private_key, is_devnet
from codream.preview import grid_png
from codream.market import PHASE_DEADLINES, STATUS_NOTES, scores
from codream.protocol import INVALID, NO_EVAL, BurnReason, Outcome, Phase, Status, Verdict
from ipfs import CID, InvalidCidError, IpfsClient, IpfsError, gateway_url

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


def preview_png(ipfs: IpfsClient, cid: str, thumb: bool = False) -> bytes:
    """A labelled grid of the first 64 dreams of a bundle (fetched, CID-verified, header checked);
    a thumbnail: the first 16, about 24 px each, 8 a row."""
    images, _ = read_bundle(ipfs.cat(cid, max_bytes=MAX_PREVIEW_BYTES))
    if thumb:
        return grid_png(images, None, cols=8, max_images=16, scale=max(1, 24 // max(images.shape[-2:])))
    return grid_png(images, None, cols=16, max_images=64)


def wei_as_text(obj):
    """Every ``*wei`` amount as a decimal string (JSON numbers lose precision above 2**53)."""
    if isinstance(obj, dict):
        return {k: str(v) if k.endswith("wei") and isinstance(v, int) else wei_as_text(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [wei_as_text(v) for v in obj]
    return obj


def make_app(deployment: str | None = None, rpc_url: str | None = None,
             gateway: str | None = None, ipfs_api: str | None = None) -> web.Application:
    """``gateway`` (for CID links) defaults to the gateway of ``ipfs_api`` ($CODREAM_IPFS_API), as the CLI."""
    if not ETHERS.exists():
        raise FileNotFoundError(f"{ETHERS} missing: run `make setup` (installs ethers from npm)")
    ipfs = IpfsClient(ipfs_api, timeout=30)
    gateway = gateway or gateway_url(ipfs_api)
    previews: OrderedDict[tuple[str, bool], bytes] = OrderedDict()  # the last 64 rendered (bundles are immutable)

    async def cfg(request):  # read per request: the devnet may be redeployed while the page runs
        return web.json_response(page_config(deployment, rpc_url, gateway))

    def open_chain() -> Chain:  # per request, like /config.json: the devnet may be redeployed
        rpc = rpc_url or (None if deployment else load_record().get("rpc_url")) or config.rpc_url()
        return Chain(ChainConfig(rpc, deployment, retry_seconds=2))

    def api(read):
        async def handler(request):
            try:
                obj = await request.loop.run_in_executor(None, lambda: read(open_chain(), request.match_info))
            except ValueError as exc:
                return web.json_response({"error": str(exc)}, status=400)
            except (ChainError, DeploymentError) as exc:
                return web.json_response({"error": str(exc)}, status=503)
            return web.json_response(wei_as_text(obj), headers={"Cache-Control": "no-cache"})
        return handler

    def account(chain: Chain, m: dict) -> dict:
        if not Web3.is_address(m["address"]):
            raise ValueError(f"{m['address']!r} is not an Ethereum address")
        return statement(chain, m["address"])

    def task(chain: Chain, m: dict) -> dict:
        tid = int(m["id"])  # the route admits digits only
        if not 1 <= tid <= chain.call("taskCount"):
            raise ValueError(f"no task {tid} on this market")
        return scores(chain, tid)

    async def preview(request):
        try:
            cid = str(CID.parse(request.match_info["cid"]))
        except InvalidCidError:
            return web.Response(status=400, text="not a CID")
        key = (cid, request.query.get("thumb") == "1")
        png = previews.get(key)
        if png is None:
            try:
                png = await request.loop.run_in_executor(None, preview_png, ipfs, *key)
            except BundleError as exc:
                return web.Response(status=422, text=f"not a dream bundle: {exc}")
            except IpfsError as exc:
                return web.Response(status=502, text=f"cannot fetch {cid}: {exc}")
            previews[key] = png
            while len(previews) > 64:
                previews.popitem(last=False)
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
    app.router.add_get("/api/account/{address}.json", api(account))
    app.router.add_get(r"/api/task/{id:\d{1,9}}.json", api(task))
    app.router.add_get("/api/network.json", api(lambda chain, m: network(chain)))
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
