"""`codream demo --adversarial`: the network's economic security suite, on a local devnet.

Honest parties and every cheating strategy the project knows (miners, verifiers, owners) take
part in two rounds of real tasks on market v3 with verification v2; the table shows, for each
strategy, what it paid in, was credited, lost to slashing, its net, the work it did and why (the
accounting is the core's: ``codream.accounts.ledger``). Honest miners and verifiers net > 0; every
cheat nets < 0, or ≤ 0 where the protocol can only make it pointless (the reason says which).

Round 1 runs three tasks at once on the digits teacher:
  A (honest owner) — the arena: two honest miners; noise; an exact copy; the same dreams shifted,
    flipped and noised under three more addresses (a sybil split of one unit of work), and
    rotated and blended under two others (disguises no pixel alignment undoes); the
    task's own eval images; low-effort dreams; spam from one address; a staller's junk (the
    staller's seats vote it 10,000), a briber's junk (a bribed pair votes it 10,000, paid per
    delivered vote); owner E joins A as cheaply as a co-owner may (10 % of the bounty) with an eval
    set whose labels are shuffled, and adds junk.
  C (an owner that never reveals its eval set, with sybil junk) and D (an owner that reveals the
    CID of bytes it never publishes): the honest miners mine them too.
Round 2 runs task B on the same teacher: an honest miner and a replay of A's accepted dreams;
its owner stakes more than every verifier together right before the draw (a late staker).

Verifiers (all rounds): three honest, one honest stake split across three addresses, a lazy one
(reveals a constant), a copier (tries to reveal another seat's scores), a silent one, a colluding
pair that calls the honest miner's bundle INVALID, the staller and the bribed pair.

Agents run in two worker processes (`python -m rounds.adversarial worker PLAN`), one for the miners
and one for the verifiers, each stepping its agents in turn: the same agent code as `codream
miner run` / `verifier run --strategy ...`, without thirty Python processes on two cores. The
verifiers of the worker compute each bundle's (deterministic) score once and share it; each still
checks the eval sets, commits and reveals its own vectors.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from codream.agent import Agent, AgentState, chain_key
from codream.chain import Chain, ChainConfig, ChainError, load_account
from codream.devchain import dev_address
from codream.accounts import ledger
from codream.market import books, books_line, eth, submissions
from codream.protocol import Phase, Status, Verdict
from codream.spec import load as load_spec
from ipfs import IpfsClient, IpfsError
from miner.agent import MinerAgent
from miner.strategies import Copy, Honest, LeakedEval, LowEffort, Noise, Spam, TransformedCopy
from owner.strategies import Honest as HonestOwner, NeverReveals, OwnerStrategy, ShuffledLabels, UnhostedEval
from owner.tasks import create_task, join_task, set_quality_bar
from owner.teacher import train_reference
from verifier.agent import VerifierAgent
from verifier.strategies import Colluder, Copier, Honest as HonestVerifier, Lazy, Silent

from . import devnet
from .procs import cli_argv, spawn
from .demo import Demo

ETH = 10**18
WINDOW = 3600
N_DREAMS = 300
MIN_GAIN = 7000  # the owners' quality bar (bps): 3-step dreams score ~4,900, 120-step ~8,000 (n=300)
BOND = ETH // 100
SEATS = 31  # K = r = 31 (the largest r): every seat scores every submission, the honest stake decides, and
# the adversaries' small stakes are drawn onto the committee in most runs. The staller and the bribed pair
# act only in task A: with 16 % of the stake each, the chance that either holds none of A's 31 seats is
# 0.45 % (with the 9.5 % they had, 4.5 %: a run where the staller held no seat in A netted it +0.01 ETH of
# fees for honest work elsewhere)
HONEST_STAKE, SYBIL_STAKE, ADVERSARY_STAKE, STALLER_STAKE, BRIBED_STAKE = 3.0, 1.0, 1.0, 4.0, 2.0
BRIBE = ETH // 100  # per delivered vote: less than the seat's slash (a bribe cannot pay for itself)
ACT_IN_A_ONLY = ("verifier staller", "verifier bribed pair")  # strategies whose cheating happens in task A only
LATE_STAKE = 30 * ETH  # owner B's late stake: more than every verifier together (25 ETH)


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
    miner_devs: list[int] = field(default_factory=list)  # an owner's or verifier's own miner addresses
    miner_kind: str = "noise"
    transforms: tuple[str, ...] = ("shift", "flip", "noise")  # a transformed copier's disguise per address

    @property
    def addresses(self) -> list[str]:
        return [dev_address(d) for d in self.devs + self.miner_devs]


def actors() -> list[Actor]:
    return [
        Actor("owner A (honest)", "owner", [0], True, "reveals its eval set on time"),
        Actor("owner B (late staker)", "owner", [1], False, f"stakes {LATE_STAKE // ETH} ETH, more than every "
              "verifier together, right before its draw: it is warming up and holds no seat"),
        Actor("owner C (withholds its eval, sybil junk)", "owner", [2], False, "keeps its eval set secret; its "
              "sybil commits 3 noise submissions to C", miner_devs=[29], tasks=["C"]),
        Actor("owner D (unhosted eval)", "owner", [3], False, "reveals the CID of bytes it never publishes"),
        Actor("owner E (cheap co-owner, bad eval)", "owner", [27], False, "joins A with the least a co-owner may "
              "pay, an eval set with shuffled labels; its sybil adds 2 noise submissions", miner_devs=[28],
              tasks=["A"]),
        Actor("miner honest 1", "miner", [4], True, "dreams (120 steps)", ["A", "C", "D", "B"]),
        Actor("miner honest 2", "miner", [5], True, "dreams (120 steps, another seed)", ["A", "C", "D", "B"]),
        Actor("miner noise", "miner", [6], False, "noise (the recipe's starting noise, with a receipt that replays)", ["A"], "noise"),
        Actor("miner exact copy", "miner", [7], False, "honest 1's bundle, re-bound", ["A"], "copy"),
        Actor("miner sybil copies ×3", "miner", [8, 9, 10], False,
              "honest 1's dreams shifted / flipped / noised, under 3 addresses", ["A"], "transformed"),
        # an elastic warp and a 5-step re-optimisation are out of the derived check's reach on 8×8 digits
        # (both accepted in measured runs; docs/threat-model.md): the receipt's replay catches them
        Actor("miner warped copies ×2", "miner", [37, 38], False, "honest 1's dreams elastically warped / "
              "re-optimised 5 steps, keeping its synthesis receipt, under 2 addresses (no pixel statistic tells "
              "them from fresh dreams on 8×8 digits: the verifiers' replay of a shard of the receipt does)",
              ["A"], "transformed", transforms=("warp", "reoptimise")),
        Actor("miner disguised copies ×3", "miner", [34, 35, 36], False, "honest 1's dreams rotated 10° / its own "
              "pairs blended 70/30 / rotated 10° then blended 70/30, under 3 addresses (no pixel alignment undoes "
              "them: the derived-work check, whose blend check tries the earlier images rotated too)",
              ["A"], "transformed", transforms=("rotate", "blend", "rotblend")),
        Actor("miner eval images", "miner", [11], False, "the task's eval images (rebuilt from public data)",
              ["A"], "eval-images"),
        Actor("miner low effort", "miner", [12], False, "3 optimisation steps instead of 120", ["A"], "low-effort"),
        Actor("miner spam ×3", "miner", [13], False, "three noise submissions from one address", ["A"], "spam"),
        Actor("miner replay", "miner", [14], False, "honest 1's accepted dreams from task A, re-bound to task B",
              ["B"], "replay"),
        Actor("verifier honest ×3", "verifier", [15, 16, 17], True, "checks, scores, reveals", stake=HONEST_STAKE),
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
        Actor("verifier staller (+ its junk)", "verifier", [26], False, "its seats vote its own sybil's noise "
              "10,000, hoping to stall or steer it", kind="staller", stake=STALLER_STAKE, miner_devs=[30],
              tasks=["A"]),
        Actor("verifier bribed pair ×2", "verifier", [31, 32], False, f"vote the briber's junk 10,000 for "
              f"{eth(BRIBE)} per delivered vote", kind="bribed", stake=BRIBED_STAKE),
        Actor("miner briber", "miner", [33], False, f"noise, and pays the bribed pair {eth(BRIBE)} per vote for "
              "it", ["A"], "noise"),
    ]


# ----------------------------------------------------------------------------- the worker
def build_agents(plan: dict) -> list[Agent]:
    """The agents of one worker process, from its plan (JSON)."""
    cfg = ChainConfig(plan["rpc"], plan.get("deployment"), retry_seconds=60, patient_start=True)
    ipfs = IpfsClient(plan["ipfs"], timeout=30)
    agents = []
    memo: dict = {}  # the verifiers of this worker score each bundle once (deterministic: each would get the same)
    for a in plan["agents"]:
        chain = Chain(cfg, load_account(f"dev:{a['dev']}"))
        kind = a["kind"]
        if a["role"] == "miner":
            strategy = {"honest": lambda: Honest(), "noise": Noise, "low-effort": lambda: LowEffort(3),
                        "eval-images": LeakedEval, "spam": lambda: Spam(a.get("copies", 3)),
                        "copy": lambda: Copy(a["source"]), "replay": lambda: Copy(cid=a["cid"]),
                        "transformed": lambda: TransformedCopy(a["transform"], a["source"])}[kind]()
            agents.append(MinerAgent(chain, ipfs, plan["n"], strategy, a.get("task"), claim=True, verbose=False))
        else:
            strategy = {"honest": HonestVerifier, "lazy": lambda: Lazy(5000), "copier": Copier, "silent": Silent,
                        "colluder": lambda: Colluder(a["rival"], "invalid"),
                        "staller": lambda: Colluder(a["target"], "accept"),
                        "bribed": lambda: Colluder(a["target"], "accept")}[kind]()
            agents.append(VerifierAgent(chain, ipfs, int(a["stake"] * ETH), threads=1, claim=True, keeper=True,
                                        verbose=False, strategy=strategy, score_memo=memo))
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
        self.parties = []  # the table is per strategy (self.actors), not per party
        self.tasks: dict[str, int] = {}
        self.bribes: list[tuple[str, str, int]] = []

    def _actor(self, name_start: str) -> Actor:
        return next(a for a in self.actors if a.name.startswith(name_start))

    def _kind(self, kind: str) -> set[str]:
        return {dev_address(d) for a in self.actors if a.role == "verifier" and a.kind == kind for d in a.devs}

    def silent(self) -> set[str]:
        return self._kind("silent")

    def copiers(self) -> set[str]:
        return self._kind("copier")

    def appellants(self) -> set[str]:
        return self._kind("honest")

    def _task_dir(self) -> Path:
        """The digits task with the adversarial round's quality bar (min gain)."""
        base = self.dir / "task-digits"
        if not (base / "spec.json").exists():
            self.say("training the digits teacher (held-out eval set kept secret)")
            info = train_reference("digits", base, progress=False)
            self.say(f"teacher accuracy {info['teacher_accuracy']:.1%}")
        adv = self.dir / "task-adversarial"
        # new images are paid in units of one bundle of this round's size (the sybil split of one
        # unit of work then earns no more than the unit)
        set_quality_bar(base, adv, min_gain_bps=MIN_GAIN, reference_images=self.n)
        return adv

    def _owner_chain(self, dev: int) -> Chain:
        return Chain(ChainConfig(self.rpc), load_account(f"dev:{dev}"))

    def _create(self, label: str, owner: Actor, strategy: OwnerStrategy, task_dir: Path, ipfs) -> int:
        chain = self._owner_chain(owner.devs[0])
        out = create_task(chain, ipfs, task_dir, ETH, BOND, SEATS, SEATS, [WINDOW] * 5, 1000,
                          eval_path=strategy.eval_path(task_dir), accuracy_bps=strategy.accuracy_bps(task_dir))
        self.tasks[label] = out["task_id"]
        self.owner_chains[label] = [(chain, strategy)]
        return out["task_id"]

    def _worker(self, name: str, agents: list[dict], poll: float = 0.5) -> None:
        plan = self.dir / f"plan-{name}.json"
        plan.write_text(json.dumps({"rpc": self.rpc, "ipfs": self.api, "n": self.n, "agents": agents, "poll": poll}))
        self.procs[name] = spawn([sys.executable, "-m", "rounds.adversarial", "worker", str(plan)],
                                 self.logs / f"{name}.log", env={"CODREAM_HOME": str(self.home)})

    def run(self) -> dict:
        t0 = time.monotonic()
        devnet.down(*self.ports)
        st = devnet.up(*self.ports)
        self.rpc, self.api = st["anvil"]["rpc_url"], st["ipfs"]["api"]
        self.say(f"devnet up at {self.rpc} (IPFS {self.api}); market, stake registry, appeals module and lens "
                 "deployed")
        self.owner_chains: dict[str, list] = {}
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
        staller_junk = dev_address(self._actor("verifier staller").miner_devs[0])
        briber = self._actor("miner briber").addresses[0]
        out = []
        for a in self.actors:
            if a.role == "verifier":
                for d in a.devs:
                    out.append({"role": "verifier", "dev": d, "kind": a.kind, "stake": a.stake, "rival": rival,
                                "target": staller_junk if a.kind == "staller" else briber})
        return out

    def _miner_plan(self, leak: Path) -> list[dict]:
        miners = []
        for a in self.actors:  # honest miners first: a copy must be committed after its original
            if a.role == "miner" and a.tasks != ["B"]:
                for k, d in enumerate(a.devs):
                    spec = {"role": "miner", "dev": d, "kind": a.kind, "source": str(leak),
                            "transform": a.transforms[k % len(a.transforms)], "copies": 3}
                    if a.tasks == ["A"]:
                        spec["task"] = self.tasks["A"]
                    miners.append(spec)
            elif a.miner_devs and a.tasks:  # an owner's or a verifier's own junk
                copies = 3 if a.name.startswith("owner C") else 2 if a.name.startswith("owner E") else 1
                miners.append({"role": "miner", "dev": a.miner_devs[0], "kind": "spam" if copies > 1 else "noise",
                               "copies": copies, "task": self.tasks[a.tasks[0]]})
        return miners

    def _submissions_to(self, label: str) -> int:
        n = 0
        for a in self.actors:
            if a.role == "miner" and label in a.tasks:
                n += len(a.devs) * (3 if a.kind == "spam" else 1)
            elif a.miner_devs and a.tasks == [label]:
                n += 3 if a.name.startswith("owner C") else 2 if a.name.startswith("owner E") else 1
        return n

    def _rounds(self, task_dir: Path, ipfs: IpfsClient) -> dict:
        chain = self.chain
        # -- the verifiers stake and warm up ---------------------------------------------
        plan = self._verifier_plan()
        self._worker("verifiers", plan)
        self.wait_for(f"{len(plan)} verifiers stake", lambda: chain.call("verifierCount", on="registry") >= len(plan))
        chain.increase_time(chain.call("WARMUP", on="registry") + 1)
        self.wait_for(f"{len(plan)} verifiers activate their stake",
                      lambda: len(chain.events("Activated", on="registry")) >= len(plan))
        self.say(f"{len(plan)} verifiers staked; devnet time moved past the warm-up; they activated their stake")
        # -- round 1: tasks A, C, D ----------------------------------------------------------
        for label, owner, strategy in (("A", "owner A", HonestOwner()), ("C", "owner C", NeverReveals()),
                                       ("D", "owner D", UnhostedEval())):
            self._create(label, self._actor(owner), strategy, task_dir, ipfs)
        e_chain, e_strategy = self._owner_chain(self._actor("owner E").devs[0]), ShuffledLabels()
        joined = join_task(e_chain, self.tasks["A"], e_strategy.eval_path(task_dir), ETH // 10,
                           accuracy_bps=e_strategy.accuracy_bps(task_dir))
        self.owner_chains["A"].append((e_chain, e_strategy))
        self.say(f"round 1: tasks A={self.tasks['A']} (honest owner; owner E joined with 0.1 ETH, the least, "
                 f"declaring {joined['declared_accuracy_bps']} bps on a shuffled-label eval set), "
                 f"C={self.tasks['C']} (never reveals), D={self.tasks['D']} (unhosted eval): bounty 1 ETH each, bond "
                 f"0.01 ETH, min gain {load_spec(task_dir / 'spec.json').scoring.min_gain_bps} bps (the task's spec), "
                 f"{SEATS} seats each scoring every submission")
        honest1 = self._actor("miner honest 1")
        leak = self.home / "agents" / f"miner-{honest1.addresses[0].lower()}" / f"task-{self.tasks['A']}.safetensors"
        self._worker("miners", self._miner_plan(leak), poll=2.0)  # idle after their reveals: leave CPU to verifiers
        for label in ("A", "C", "D"):
            n = self._submissions_to(label)
            self.wait_for(f"{n} submissions to task {label}",
                          lambda lb=label, k=n: self.count("Committed", self.tasks[lb]) >= k,
                          lambda lb=label, k=n: f"{self.count('Committed', self.tasks[lb])}/{k} ")
        self.pass_deadline(chain, max(self.tasks.values()), "commitEnd")
        for label in ("A", "C", "D"):
            for owner_chain, strategy in self.owner_chains[label]:
                strategy.reveal(owner_chain, ipfs, self.tasks[label])
        self.say("commit windows closed; owners A and E revealed their eval sets, D an unhosted CID, C nothing")
        self.pass_deadline(chain, self.tasks["C"], "evalRevealEnd")  # C: no eval set, no draw, no bundle public
        for label in ("A", "D"):
            self.wait_for(f"the committee of {label}",
                          lambda lb=label: Phase(chain.phase(self.tasks[lb])) >= Phase.REVEAL)
        self.wait_for("reveals in A and D", lambda: all(
            self.count("Revealed", self.tasks[lb]) >= self.count("Committed", self.tasks[lb]) for lb in ("A", "D")))
        self.pass_deadline(chain, max(self.tasks["A"], self.tasks["D"], key=lambda t: chain.view("getTask", t)[
            "revealEnd"]), "revealEnd")
        self.score_windows(chain, [self.tasks["A"], self.tasks["D"]])
        self._pay_bribes(self.tasks["A"])
        self.appeal_window(chain, [self.tasks["A"], self.tasks["D"]])
        self.wait_for("the keepers settle A, C and D", lambda: all(
            Phase(chain.phase(self.tasks[lb])) == Phase.FINALIZED for lb in ("A", "C", "D")))
        self.wait_for("the committers of C reclaim their bonds",
                      lambda: self.count("SubmissionSettled", self.tasks["C"]) >= self.count("Committed", self.tasks["C"]))
        self.say("round 1 settled")
        # -- round 2: task B (a replay of A's accepted dreams; owner B stakes late) -------------
        self._create("B", self._actor("owner B"), HonestOwner(), task_dir, ipfs)
        self.say(f"round 2: task B={self.tasks['B']}, same teacher, {SEATS} seats")
        a_rows = submissions(chain, self.tasks["A"], chain.view("getTask", self.tasks["A"])["submissionCount"])
        honest_cid = next(r["cid"] for r in a_rows if r["miner"] == honest1.addresses[0])
        replay = self._actor("miner replay")
        self._worker("miners-2", [{"role": "miner", "dev": d, "kind": "replay", "cid": honest_cid,
                                   "task": self.tasks["B"]} for d in replay.devs])
        self.wait_for("3 submissions to task B", lambda: self.count("Committed", self.tasks["B"]) >= 3)
        self.pass_deadline(chain, self.tasks["B"], "commitEnd")
        b_chain, b_strategy = self.owner_chains["B"][0]
        b_chain.send("stake", value=LATE_STAKE, on="registry")
        b_strategy.reveal(b_chain, ipfs, self.tasks["B"])
        self.say(f"owner B staked {eth(LATE_STAKE)} right before its draw, then revealed its eval set")
        self.wait_for("the committee of B", lambda: Phase(chain.phase(self.tasks["B"])) >= Phase.REVEAL)
        seats_b = chain.call("getSeats", self.tasks["B"], on="lens")[0]
        self.say(f"owner B's late stake holds {sum(v == b_chain.account.address for v in seats_b)} of B's "
                 f"{len(seats_b)} seats (it is still warming up)")
        self.wait_for("reveals in B", lambda: self.count("Revealed", self.tasks["B"]) >= 3)
        self.pass_deadline(chain, self.tasks["B"], "revealEnd")
        self.score_windows(chain, [self.tasks["B"]])
        self.appeal_window(chain, [self.tasks["B"]])
        self.wait_for("the keepers settle B", lambda: Phase(chain.phase(self.tasks["B"])) == Phase.FINALIZED)
        time.sleep(3)  # last claims
        return self.report_all()

    def _pay_bribes(self, tid: int) -> None:
        """The briber pays each bribed seat whose revealed vector (`CoDreamLens.getScores`) shows
        the agreed 10,000 on its junk: a plain transfer, outside the market."""
        chain = self.chain
        briber = self._actor("miner briber")
        junk = {r["index"] for r in submissions(chain, tid, chain.view("getTask", tid)["submissionCount"])
                if r["miner"] == briber.addresses[0]}
        bribed = self._kind("bribed")
        payer = Chain(ChainConfig(self.rpc), load_account(f"dev:{briber.devs[0]}"))
        owners = chain.view("getTask", tid)["ownerCount"]
        verifiers, _, revealed = chain.call("getSeats", tid, on="lens")
        for j, v in enumerate(verifiers):
            if v not in bribed or not revealed[j]:
                continue
            subs = list(chain.call("assigned", tid, j, on="lens"))
            vector = list(chain.call("getScores", tid, j, on="lens"))
            if any(vector[owners + i] == 10_000 for i, s in enumerate(subs) if s in junk):
                tx = {"to": v, "value": BRIBE, "from": payer.account.address, "gas": 21_000, "chainId": payer.chain_id,
                      "nonce": payer.w3.eth.get_transaction_count(payer.account.address, "pending"),
                      "maxFeePerGas": 2 * (payer.block().get("baseFeePerGas") or 1), "maxPriorityFeePerGas": 0}
                payer.w3.eth.wait_for_transaction_receipt(payer.w3.eth.send_raw_transaction(
                    payer.account.sign_transaction(tx).raw_transaction))
                self.bribes.append((payer.account.address, v, BRIBE))
        self.say(f"the briber paid {len(self.bribes)} delivered vote(s), {eth(BRIBE)} each")

    # -- the table ---------------------------------------------------------------------
    def report_all(self) -> dict:
        chain = self.chain
        accounts = ledger(chain, {a.name: a.addresses for a in self.actors}, transfers=self.bribes)
        # the staller and the bribed pair cheat in task A only; elsewhere their seats work honestly and are
        # paid for it, so the attack's own net is theirs in A (the row's net adds their honest work elsewhere)
        in_a = ledger(chain, {a.name: a.addresses for a in self.actors if a.name.startswith(ACT_IN_A_ONLY)},
                      tasks=[self.tasks["A"]], transfers=self.bribes)
        table = Table(title="Adversarial rounds: who earned or lost what, and why")
        for col in ("strategy", "paid in", "credited", "slashed", "net", "work", "why"):
            table.add_column(col, justify="right" if col in ("paid in", "credited", "slashed", "net", "work") else "left")
        tasks = {lb: (tid, chain.view("getTask", tid)) for lb, tid in self.tasks.items()}
        subs = {lb: submissions(chain, tid, t["submissionCount"]) for lb, (tid, t) in tasks.items()}
        verdicts = {(e["taskId"], e["owner"]): Verdict(e["verdict"]).human for e in chain.events("OwnerJudged")}
        seat_events = chain.events("SeatSettled")
        rows = []
        for a in self.actors:
            addrs, acct = set(a.addresses), accounts[a.name]
            work, why = 0.0, []
            if a.role == "owner":
                label = {"E": "A"}.get(a.name.split()[1], a.name.split()[1])  # owner E co-owns A
                tid = self.tasks[label]
                accepted = sum(r["status"] == Status.ACCEPTED for r in subs[label])
                why.append(f"{a.note}; eval set {verdicts.get((tid, dev_address(a.devs[0])), '?')}; {accepted} "
                           f"bundle(s) accepted in {label}")
            if a.role == "miner" or a.miner_devs:
                for lb, rows_ in subs.items():
                    for r in (r for r in rows_ if r["miner"] in addrs):
                        why.append(f"{lb}: {r['status'].human}" + (f" ({r['result']} bps)" if r["status"] in (
                            Status.ACCEPTED, Status.REJECTED) else "") + (" (bond reclaimed)" if r.get("reclaimed")
                                                                          else ""))
                for d in a.devs + a.miner_devs:
                    state = AgentState("miner", dev_address(d), chain_key(chain))
                    work += sum(t.get("work_seconds", 0.0) for t in state.data["tasks"].values())
            if a.role == "verifier":
                mine = [e for e in seat_events if e["verifier"] in addrs]
                faulty = sum(e["faulty"] for e in mine)
                why.insert(0, "not drawn: nothing earned, nothing risked (pointless)" if not mine else
                           f"{len(mine)} seats, {faulty} faulty" + (f" ({a.note})" if faulty else ""))
                if acct.transfers:
                    why.append(f"bribes received {eth(acct.transfers)}")
                if a.name in in_a:
                    seats_a = sum(1 for e in mine if e["taskId"] == self.tasks["A"])
                    why.append(f"in A, the task it attacked: {seats_a} seats, net {eth(in_a[a.name].net, True)}")
            if a.name == "miner briber":
                why.append(f"bribes paid {eth(-acct.transfers)}")
            row = {"strategy": a.name, "role": a.role, "honest": a.honest, "addresses": sorted(addrs),
                   **acct.as_dict(), "work_seconds": round(work, 1), "why": "; ".join(why)}
            if a.name in in_a:
                row["net_in_A_wei"] = in_a[a.name].net
                row["seats_in_A"] = sum(1 for e in seat_events
                                        if e["verifier"] in addrs and e["taskId"] == self.tasks["A"])
            rows.append(row)
            table.add_row(a.name, eth(acct.paid_in), eth(acct.credited), eth(acct.slashed), eth(acct.net, True),
                          f"{work:.0f} s" if work else "–", row["why"])
        self.con.print(table)
        b = books(chain)
        self.say(books_line(b))
        burned = {}
        for e in chain.events("Burned"):
            burned[e["reason"]] = burned.get(e["reason"], 0) + e["amount"]
        return {"tasks": self.tasks, "rows": rows, "books": b,
                "appeals": sum(chain.call("appealCount", t, on="appeals") for t in self.tasks.values()),
                "burned_by_reason": {str(k): v for k, v in burned.items()}}


def run(keep_up: bool = False, n: int = N_DREAMS, anvil_port: int = 8545, ipfs_port: int = 5001) -> dict:
    return AdversarialRound(keep_up, n, anvil_port, ipfs_port).run()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        work(sys.argv[2])
    else:
        sys.exit(f"usage: {' '.join(cli_argv())} demo --adversarial  (workers: python -m rounds.adversarial worker PLAN)")
