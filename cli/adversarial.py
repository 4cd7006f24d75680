"""`codream demo --adversarial`: the network's economic security suite, on a local devnet.

Honest parties and every cheating strategy the project knows (miners, verifiers, owners) take
part in two rounds of real tasks on market v2 with verification v2; the table shows, for each
strategy, what it paid in, was credited, lost to slashing, its net, the work it did and why.
Honest miners and verifiers net > 0; every cheat nets < 0, or ≤ 0 where the protocol can only
make it pointless (the reason says which).

Round 1 runs three tasks at once on the digits teacher:
  A (honest owner) — the arena: two honest miners; noise; an exact copy; the same dreams shifted,
    flipped and noised under three more addresses (a sybil split of one unit of work); the
    task's own eval images; low-effort dreams; five spam submissions from one address.
  C (an owner that never reveals its eval set) and D (an owner that reveals the CID of bytes it
    never publishes): the honest miners mine them too.
Round 2 runs task B on the same teacher: an honest miner and a replay of A's accepted dreams;
its owner sizes the committee to the maximum and its own verifier unbonds right after the
draw request, trying to block the draw.

Verifiers (all rounds): three honest, one honest stake split across three addresses, a lazy one
(reveals a constant), a copier (tries to reveal another seat's scores), a silent one, and a
colluding pair that calls the honest miner's bundle INVALID.

Agents run in two worker processes (`python -m cli.adversarial worker PLAN`), one for the miners
and one for the verifiers, each stepping its agents in turn: the same agent code as `codream
miner run` / `verifier run --strategy ...`, without thirty Python processes on two cores.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from codream.agent import Agent, AgentState, chain_key
from codream.chain import Chain, ChainConfig, ChainError, load_account
from codream.devchain import dev_address
from codream.market import eth, submissions
from codream.protocol import Phase, Status
from codream.spec import load as load_spec
from ipfs import IpfsClient, IpfsError
from miner.agent import MinerAgent
from miner.strategies import Copy, Honest, LeakedEval, LowEffort, Noise, Spam, TransformedCopy
from owner.strategies import Honest as HonestOwner, NeverReveals, OwnerStrategy, UnhostedEval
from owner.tasks import create_task
from owner.teacher import train_reference
from verifier.agent import VerifierAgent
from verifier.strategies import Colluder, Copier, Honest as HonestVerifier, Lazy, Silent

from . import devnet
from .common import cli_argv, spawn
from .demo import Demo

ETH = 10**18
WINDOW = 3600
N_DREAMS = 300
MIN_GAIN = 7000  # the owners' quality bar (bps): 3-step dreams score ~4,900, 120-step ~8,000 (n=300)
BOND = ETH // 100
SEATS = 48  # every seat scores every submission (r = K): the honest stake decides every result
HONEST_STAKE, SYBIL_STAKE, ADVERSARY_STAKE = 3.0, 1.0, 0.5


@dataclass
class Actor:
    """One row of the table: a strategy played from one or more devnet accounts."""

    name: str
    role: str  # owner | miner | verifier
    devs: list[int]
    honest: bool
    note: str = ""  # what the strategy does
    tasks: list[str] = field(default_factory=list)  # miners: the tasks it mines (labels)
    kind: str = "honest"  # the agent strategy
    stake: float = 0.0

    @property
    def addresses(self) -> list[str]:
        return [dev_address(d) for d in self.devs]


def actors() -> list[Actor]:
    return [
        Actor("owner A (honest)", "owner", [0], True, "reveals its eval set on time"),
        Actor("owner B (blocks the draw)", "owner", [1], False, "sizes the committee to the maximum; its own "
              "verifier unbonds right after the draw request"),
        Actor("owner C (never reveals)", "owner", [2], False, "keeps its eval set secret"),
        Actor("owner D (unhosted eval)", "owner", [3], False, "reveals the CID of bytes it never publishes"),
        Actor("miner honest 1", "miner", [4], True, "dreams (120 steps)", ["A", "C", "D", "B"]),
        Actor("miner honest 2", "miner", [5], True, "dreams (120 steps, another seed)", ["A", "C", "D", "B"]),
        Actor("miner noise", "miner", [6], False, "uniform noise", ["A"], "noise"),
        Actor("miner exact copy", "miner", [7], False, "honest 1's bundle, re-bound", ["A"], "copy"),
        Actor("miner sybil copies ×3", "miner", [8, 9, 10], False,
              "honest 1's dreams shifted / flipped / noised, under 3 addresses", ["A"], "transformed"),
        Actor("miner eval images", "miner", [11], False, "the task's eval images (rebuilt from public data)",
              ["A"], "eval-images"),
        Actor("miner low effort", "miner", [12], False, "3 optimisation steps instead of 120", ["A"], "low-effort"),
        Actor("miner spam ×5", "miner", [13], False, "five noise submissions from one address", ["A"], "spam"),
        Actor("miner replay", "miner", [14], False, "honest 1's accepted dreams from task A, re-bound to task B",
              ["B"], "replay"),
        Actor("verifier honest ×3", "verifier", [15, 16, 17], True, "scores and reveals", stake=HONEST_STAKE),
        Actor("verifier sybil split ×3", "verifier", [18, 19, 20], True,
              f"one {3 * SYBIL_STAKE:g} ETH stake split across 3 addresses", stake=SYBIL_STAKE),
        Actor("verifier lazy", "verifier", [21], False, "reveals 5,000 bps for everything", kind="lazy",
              stake=ADVERSARY_STAKE),
        Actor("verifier copier", "verifier", [22], False, "tries to reveal another seat's scores", kind="copier",
              stake=ADVERSARY_STAKE),
        Actor("verifier silent", "verifier", [23], False, "takes its seats, never commits", kind="silent",
              stake=ADVERSARY_STAKE),
        Actor("verifier colluders ×2", "verifier", [24, 25], False, "call honest 1's bundles INVALID",
              kind="colluder", stake=ADVERSARY_STAKE),
        Actor("verifier of owner B", "verifier", [26], True, "owner B's own stake; unbonds after B's draw request "
              "(the owner's attack is owner B's row: the snapshot keeps this stake, so it still serves its seats)",
              stake=ADVERSARY_STAKE),
    ]


# ----------------------------------------------------------------------------- the worker
def build_agents(plan: dict) -> list[Agent]:
    """The agents of one worker process, from its plan (JSON)."""
    cfg = ChainConfig(plan["rpc"], plan.get("deployment"), retry_seconds=60)
    ipfs = IpfsClient(plan["ipfs"], timeout=30)
    agents = []
    for a in plan["agents"]:
        chain = Chain(cfg, load_account(f"dev:{a['dev']}"))
        kind = a["kind"]
        if a["role"] == "miner":
            strategy = {"honest": lambda: Honest(), "noise": Noise, "low-effort": lambda: LowEffort(3),
                        "eval-images": LeakedEval, "spam": lambda: Spam(5),
                        "copy": lambda: Copy(a["source"]), "replay": lambda: Copy(cid=a["cid"]),
                        "transformed": lambda: TransformedCopy(a["transform"], a["source"])}[kind]()
            agents.append(MinerAgent(chain, ipfs, plan["n"], strategy, a.get("task"), claim=True, verbose=False))
        else:
            strategy = {"honest": HonestVerifier, "lazy": lambda: Lazy(5000), "copier": Copier, "silent": Silent,
                        "colluder": lambda: Colluder(a["rival"], "invalid")}[kind]()
            agents.append(VerifierAgent(chain, ipfs, int(a["stake"] * ETH), threads=1, claim=True, keeper=True,
                                        verbose=False, strategy=strategy))
    return agents


def work(plan_path: str) -> None:
    """Step every agent of the plan in turn until the orchestrator stops this process."""
    plan = json.loads(Path(plan_path).read_text())
    agents = build_agents(plan)
    print(f"worker: {len(agents)} agents", flush=True)
    while True:
        for agent in agents:
            try:
                agent.step()
            except ChainError as exc:  # outages and per-agent trouble: log, go on with the others
                print(f"{agent.role} {agent.me[:10]}: {exc}", flush=True)
            except IpfsError as exc:
                print(f"{agent.role} {agent.me[:10]}: {exc}", flush=True)
        time.sleep(plan.get("poll", 0.5))


# ----------------------------------------------------------------------------- the orchestrator
class AdversarialRound(Demo):
    def __init__(self, keep_up: bool = False, n: int = N_DREAMS, anvil_port: int = 8545, ipfs_port: int = 5001,
                 con=None):
        super().__init__(keep_up, n, con, anvil_port, ipfs_port)
        self.actors = actors()
        self.tasks: dict[str, int] = {}
        self.t_round = 0.0

    def _actor(self, name_start: str) -> Actor:
        return next(a for a in self.actors if a.name.startswith(name_start))

    def _task_dir(self) -> Path:
        """The digits task with the adversarial round's quality bar (min gain)."""
        base = self.dir / "task-digits"
        if not (base / "spec.json").exists():
            self.say("training the digits teacher (held-out eval set kept secret)")
            info = train_reference("digits", base, progress=False)
            self.say(f"teacher accuracy {info['teacher_accuracy']:.1%}")
        adv = self.dir / "task-adversarial"
        shutil.rmtree(adv, ignore_errors=True)
        shutil.copytree(base, adv)
        spec = json.loads((adv / "spec.json").read_text())
        spec["scoring"]["min_gain_bps"] = MIN_GAIN
        # new images are paid in units of one bundle of this round's size (the sybil split of one
        # unit of work then earns no more than the unit)
        spec["scoring"].setdefault("novelty", {})["reference_images"] = self.n
        (adv / "spec.json").write_text(json.dumps(spec, indent=2, sort_keys=True))
        load_spec(adv / "spec.json")  # still a valid spec
        return adv

    def _create(self, label: str, owner: Actor, strategy: OwnerStrategy, task_dir: Path, ipfs, seats: int,
                windows: list[int]) -> int:
        chain = Chain(ChainConfig(self.rpc), load_account(f"dev:{owner.devs[0]}"))
        out = create_task(chain, ipfs, task_dir, ETH, BOND, seats, seats, windows, 1000,
                          eval_path=strategy.eval_path(task_dir))
        self.tasks[label] = out["task_id"]
        self.owner_chains[label] = (chain, strategy)
        return out["task_id"]

    def _worker(self, name: str, agents: list[dict], poll: float = 0.5) -> None:
        plan = self.dir / f"plan-{name}.json"
        plan.write_text(json.dumps({"rpc": self.rpc, "ipfs": self.api, "n": self.n, "agents": agents, "poll": poll}))
        self.procs[name] = spawn([sys.executable, "-m", "cli.adversarial", "worker", str(plan)],
                                 self.logs / f"{name}.log", env={"CODREAM_HOME": str(self.home)})

    def run(self) -> dict:
        t0 = time.monotonic()
        devnet.down(*self.ports)
        st = devnet.up(*self.ports)
        self.rpc, self.api = st["anvil"]["rpc_url"], st["ipfs"]["api"]
        self.say(f"devnet up at {self.rpc} (IPFS {self.api}); market and stake registry deployed")
        self.owner_chains: dict[str, tuple] = {}
        try:
            task_dir = self._task_dir()
            self.chain = Chain(ChainConfig(self.rpc), load_account("dev:0"))
            ipfs = IpfsClient(self.api)
            result = self._rounds(task_dir, ipfs)
            result["seconds"] = round(time.monotonic() - t0, 1)
            self.say(f"adversarial rounds complete in {result['seconds']} s")
            return result
        finally:
            self.teardown()

    def _verifier_plan(self) -> list[dict]:
        rival = self._actor("miner honest 1").addresses[0]
        out = []
        for a in self.actors:
            if a.role == "verifier":
                for d in a.devs:
                    out.append({"role": "verifier", "dev": d, "kind": a.kind, "stake": a.stake, "rival": rival})
        return out

    def _rounds(self, task_dir: Path, ipfs: IpfsClient) -> dict:
        chain = self.chain
        # -- round 1: tasks A, C, D ----------------------------------------------------------
        for label, owner, strategy in (("A", "owner A", HonestOwner()), ("C", "owner C", NeverReveals()),
                                       ("D", "owner D", UnhostedEval())):
            self._create(label, self._actor(owner), strategy, task_dir, ipfs, SEATS, [WINDOW] * 5)
        self.say(f"round 1: tasks A={self.tasks['A']} (honest owner), C={self.tasks['C']} (never reveals), "
                 f"D={self.tasks['D']} (unhosted eval): bounty 1 ETH each, bond 0.01 ETH, min gain {MIN_GAIN} bps, "
                 f"{SEATS} seats each scoring every submission")
        self._worker("verifiers", self._verifier_plan())
        honest1 = self._actor("miner honest 1")
        leak = self.home / "agents" / f"miner-{honest1.addresses[0].lower()}" / f"task-{self.tasks['A']}.safetensors"
        miners = []
        for a in self.actors:  # honest miners first: a copy must be committed after its original
            if a.role != "miner" or "B" in a.tasks and len(a.tasks) == 1:
                continue
            for k, d in enumerate(a.devs):
                spec = {"role": "miner", "dev": d, "kind": a.kind, "source": str(leak),
                        "transform": ("shift", "flip", "noise")[k % 3]}
                if a.tasks == ["A"]:
                    spec["task"] = self.tasks["A"]
                miners.append(spec)
        self._worker("miners", miners, poll=2.0)  # idle after their reveals: don't take the verifiers' CPU
        n_a = sum(len(a.devs) * (5 if a.kind == "spam" else 1) for a in self.actors
                  if a.role == "miner" and "A" in a.tasks)
        self.wait_for(f"{n_a} submissions to task A", lambda: self.count("Committed", self.tasks["A"]) >= n_a,
                      lambda: f"{self.count('Committed', self.tasks['A'])}/{n_a} ")
        for label in ("C", "D"):
            self.wait_for(f"2 submissions to task {label}", lambda lb=label: self.count("Committed", self.tasks[lb]) >= 2)
        chain.increase_time(WINDOW + 1)
        self.say("commit windows closed")
        self.wait_for("reveals", lambda: all(self.count("Revealed", self.tasks[lb]) >= self.count("Committed",
                                                                                                    self.tasks[lb])
                                             for lb in ("A", "C", "D")))
        chain.increase_time(WINDOW + 1)
        for label in ("A", "C", "D"):
            owner_chain, strategy = self.owner_chains[label]
            strategy.reveal(owner_chain, ipfs, self.tasks[label])
        self.say("reveal windows closed; owner A revealed its eval set, D revealed an unhosted CID, C nothing")
        self._score_windows(["A", "D"])
        chain.increase_time(2 * WINDOW + 1)  # C: past its eval-reveal deadline (a failed round)
        self.wait_for("the keepers settle A, C and D", lambda: all(
            Phase(chain.phase(self.tasks[lb])) == Phase.FINALIZED for lb in ("A", "C", "D")))
        self.say("round 1 settled")
        # -- round 2: task B (replay of A's accepted dreams; owner B tries to block the draw) --------
        self._create("B", self._actor("owner B"), HonestOwner(), task_dir, ipfs, 64, [WINDOW] * 5)
        self.say(f"round 2: task B={self.tasks['B']}, same teacher, 64 seats (the maximum)")
        a_rows = submissions(chain, self.tasks["A"], chain.view("getTask", self.tasks["A"])["submissionCount"])
        honest_cid = next(r["cid"] for r in a_rows if r["miner"] == honest1.addresses[0])
        replay = self._actor("miner replay")
        self._worker("miners-2", [{"role": "miner", "dev": d, "kind": "replay", "cid": honest_cid,
                                   "task": self.tasks["B"]} for d in replay.devs])
        self.wait_for("3 submissions to task B", lambda: self.count("Committed", self.tasks["B"]) >= 3)
        chain.increase_time(WINDOW + 1)
        self.wait_for("reveals in B", lambda: self.count("Revealed", self.tasks["B"]) >= 3)
        chain.increase_time(WINDOW + 1)
        owner_chain, strategy = self.owner_chains["B"]
        strategy.reveal(owner_chain, ipfs, self.tasks["B"])
        self.wait_for("the draw request in B", lambda: self.count("DrawRequested", self.tasks["B"]) >= 1)
        own = Chain(ChainConfig(self.rpc), load_account(f"dev:{self._actor('verifier of owner B').devs[0]}"))
        own.send("requestUnbond", on="registry")
        self.say("owner B's verifier unbonded right after the draw request")
        self._score_windows(["B"])
        self.wait_for("the keepers settle B", lambda: Phase(chain.phase(self.tasks["B"])) == Phase.FINALIZED)
        time.sleep(3)  # last claims
        return self.report_all()

    def _score_windows(self, labels: list[str]) -> None:
        chain = self.chain
        for label in labels:
            self.wait_for(f"the committee of {label}", lambda lb=label: Phase(chain.phase(self.tasks[lb])) >= Phase.SCORE_COMMIT)
        silent = set(self._actor("verifier silent").addresses)

        def expected_commits(tid):
            verifiers, _, _ = chain.call("getSeats", tid)
            return sum(v not in silent for v in verifiers)

        for label in labels:
            tid = self.tasks[label]
            want = expected_commits(tid)
            self.wait_for(f"{want} seats commit in {label}", lambda t=tid, w=want: self.count("ScoresCommitted", t) >= w,
                          lambda t=tid, w=want: f"{self.count('ScoresCommitted', t)}/{w} ")
        chain.increase_time(WINDOW + 1)
        copier = set(self._actor("verifier copier").addresses)
        for label in labels:
            tid = self.tasks[label]
            verifiers, committed, _ = chain.call("getSeats", tid)
            want = sum(c and v not in copier for v, c in zip(verifiers, committed))
            self.wait_for(f"{want} seats reveal in {label}", lambda t=tid, w=want: self.count("ScoresRevealed", t) >= w,
                          lambda t=tid, w=want: f"{self.count('ScoresRevealed', t)}/{w} ")
        time.sleep(2)  # the copier's attempt
        chain.increase_time(WINDOW + 1)

    # -- the table ---------------------------------------------------------------------
    def report_all(self) -> dict:
        chain = self.chain
        credited: dict[str, int] = {}
        for e in chain.events("Credited"):
            credited[e["account"]] = credited.get(e["account"], 0) + e["amount"]
        rows = []
        table = Table(title="Adversarial rounds: who earned or lost what, and why")
        for col in ("strategy", "paid in", "credited", "slashed", "net", "work", "why"):
            table.add_column(col, justify="right" if col in ("paid in", "credited", "slashed", "net", "work") else "left")
        tasks = {lb: (tid, chain.view("getTask", tid)) for lb, tid in self.tasks.items()}
        subs = {lb: submissions(chain, tid, t["submissionCount"]) for lb, (tid, t) in tasks.items()}
        seat_events = [e for e in chain.events("SeatSettled")]
        for a in self.actors:
            addrs = set(a.addresses)
            got = sum(credited.get(x, 0) for x in addrs)
            paid = slashed = 0
            work = 0.0
            why = []
            if a.role == "owner":
                paid = ETH
                label = a.name.split()[1]
                accepted = sum(r["status"] == Status.ACCEPTED for r in subs[label])
                why.append(f"{a.note}; {accepted} bundle(s) accepted; got back {eth(got)}")
                if not a.honest:
                    why.append("the failed round paid the bounty to the revealed miners: no dreams for free"
                               if accepted == 0 and got == 0 else
                               "the round went ahead anyway: it paid for its dreams like any owner")
            elif a.role == "miner":
                for lb, rows_ in subs.items():
                    mine = [r for r in rows_ if r["miner"] in addrs]
                    paid += BOND * len(mine)
                    for r in mine:
                        why.append(f"{lb}: {r['status'].human}" + (f" ({r['result']} bps)" if r["status"] in (
                            Status.ACCEPTED, Status.REJECTED) else ""))
                for d in a.devs:
                    state = AgentState("miner", dev_address(d), chain_key(chain))
                    work += sum(t.get("work_seconds", 0.0) for t in state.data["tasks"].values())
            else:
                mine = [e for e in seat_events if e["verifier"] in addrs]
                slashed = sum(e["slashed"] for e in mine)
                faulty = sum(e["faulty"] for e in mine)
                why.append("not drawn: nothing earned, nothing risked (pointless)" if not mine else
                           f"{len(mine)} seats, {faulty} faulty" + (f" ({a.note})" if faulty else ""))
            net = got - paid - slashed
            row = {"strategy": a.name, "role": a.role, "honest": a.honest, "addresses": sorted(addrs),
                   "paid_in_wei": paid, "credited_wei": got, "slashed_wei": slashed, "net_wei": net,
                   "work_seconds": round(work, 1), "why": "; ".join(why)}
            rows.append(row)
            table.add_row(a.name, eth(paid), eth(got), eth(slashed), eth(net, True),
                          f"{work:.0f} s" if a.role == "miner" else "–", row["why"])
        self.con.print(table)
        market_balance = chain.w3.eth.get_balance(chain.address)
        registry_balance = chain.w3.eth.get_balance(chain.registry.address)
        everyone = {e["account"] for e in chain.events("Credited")}
        owed = sum(chain.call("claimable", x) for x in everyone)
        escrow = sum(chain.view("getTask", tid)["escrow"] for tid, _ in tasks.values())
        stakers = {e["verifier"] for e in chain.events("Staked", on="registry")}
        stakes = sum(chain.call("stakeOf", x, on="registry") for x in stakers)
        books = {"market_balance_wei": market_balance, "claimable_plus_escrow_wei": owed + escrow,
                 "registry_balance_wei": registry_balance, "stakes_wei": stakes,
                 "balanced": market_balance == owed + escrow and registry_balance == stakes}
        self.say(f"books: market {eth(market_balance)} = claimable + escrow {eth(owed + escrow)}; registry "
                 f"{eth(registry_balance)} = stakes {eth(stakes)}: {'balanced' if books['balanced'] else 'NOT BALANCED'}")
        return {"tasks": self.tasks, "rows": rows, "books": books}


def run(keep_up: bool = False, n: int = N_DREAMS, anvil_port: int = 8545, ipfs_port: int = 5001) -> dict:
    return AdversarialRound(keep_up, n, anvil_port, ipfs_port).run()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        work(sys.argv[2])
    else:
        sys.exit(f"usage: {' '.join(cli_argv())} demo --adversarial  (workers: python -m cli.adversarial worker PLAN)")
