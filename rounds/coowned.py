"""The co-owned task: two owners, two architectures, one student better than both.

alice (mostly digits 0–4, ``digits_cnn``) and bob (mostly 5–9, ``digits_deep``) each train a
teacher on their own data and keep their own eval set (``owner/coowned.py``); one task folder
holds both teachers and both eval sets (the importer); miners co-dream against both teachers
(every dream is optimised against alice's and bob's teacher at once); the owners harvest the
accepted bundles (``owner/harvest.py``) and measure on each eval set and on their union, which
is what verifiers score on.

``CoOwnedDemo`` (`codream demo --co-owned`) runs it on a local devnet: alice creates the task
with her eval commitment, bob joins with his own and a contribution, two honest miners
co-dream, three verifiers score on the union of the revealed eval sets, the keepers settle,
and alice harvests the task from the chain (``owner.harvest.manifest_from_chain``, as
`codream task harvest ID` does). It prints the money table and the accuracy table.

``coowned_round`` (`codream demo --co-owned --offline`, `codream bench coowned`) is the same
experiment without a chain, with comparisons: what each owner would get from a task of its
own (dreams of its teacher alone, the same harvest recipe), the noise baseline, and a student
on the owners' pooled raw training data (what sharing data would have given, which
co-dreaming avoids).
"""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from codream.bundle import Binding, write as write_bundle
from codream.chain import Chain, ChainConfig, load_account
from codream.devchain import DEVNET_CHAIN_ID
from codream.distill import accuracy, deterministic
from codream.evalset import load_eval_set, union_eval_sets
from codream.spec import load as load_spec
from codream.teachers import load_teachers
from codream.market import eth
from ipfs import IpfsClient, cid_of_file
from codream.synthesis import DreamConfig, dream
from owner.coowned import MINOR_SHARE, build_coowned_task
from owner.harvest import AcceptedBundle, distil_resumable, harvest, harvest_recipe, manifest_from_chain
from owner.importer import eval_images_for
from owner.similarity import Party as SimilarityParty, Probe
from owner.tasks import create_task, join_task, reveal_eval

from . import devnet
from .demo import WINDOW, Demo, Party

ZERO = "0x" + "0" * 40
MINER = "0x" + "11" * 20
EVALS = ("alice", "bob", "union")
ETH = 10**18
CONTRIBUTIONS = {"alice": 6 * ETH // 10, "bob": 4 * ETH // 10}  # the bounty, co-funded
BOND = ETH // 100
STUDENT = "co-dreamed student"
DEMO_HARVEST_STEPS = 600  # the demo's harvest; `task harvest` runs the full recipe (1,500 steps here): 96.3 % vs 95.4 %


def coowned_round(work: str | Path, seed: int = 0, n: int = 1000, steps: int | None = None,
                  minor: float = MINOR_SHARE, alone: bool = True, threads: int | None = 1,
                  progress: bool = False, say=lambda msg: None, epochs: int = 40,
                  owners_dir: str | Path | None = None) -> dict:
    """One seed of the co-owned experiment; returns ``{"accuracy": {row: {eval: acc}}, ...}``."""
    work = Path(work)
    torch.manual_seed(seed)
    say(f"seed {seed}: alice and bob train their own teachers on their own data")
    info = build_coowned_task(work / "task", seed=seed, minor=minor, epochs=epochs,
                              owners_dir=owners_dir or work / "owners")
    spec = load_spec(work / "task" / "spec.json")
    teachers = load_teachers(spec)
    evals = eval_images_for(work / "task", spec)
    say(f"seed {seed}: a miner co-dreams {n} images against both teachers")
    cfg = DreamConfig.for_shape(spec.shape, seed=seed)
    co = dream(teachers, n, spec.num_classes, spec.shape, spec.mean, spec.std, cfg, progress=progress)
    bundle = work / "co-dreams.safetensors"
    write_bundle(bundle, co.images, Binding(DEVNET_CHAIN_ID, ZERO, 0, MINER))
    train = union_eval_sets([load_eval_set(o["train"], spec) for o in info["owner_files"]])
    say(f"seed {seed}: the owners harvest the bundle (distil, noise and pooled-data baselines)")
    card = harvest(spec, [AcceptedBundle(cid_of_file(bundle), MINER, file=str(bundle))], work / "harvest",
                   evals=evals, train=train, steps=steps, threads=threads, progress=progress,
                   teacher_names=[t["name"] for t in info["teachers"]])
    acc = dict(card["accuracy"])
    rows = {"teacher alice": acc["teacher alice"], "teacher bob": acc["teacher bob"]}
    merged = None
    if alone:
        union = dict(evals, union=union_eval_sets(list(evals.values())))
        recipe = harvest_recipe(spec, n, steps)

        def student_acc(ts, images, name):
            st = distil_resumable(spec, ts, images, recipe, work / f"{name}.ckpt", name, every=recipe.steps + 1,
                                  threads=threads, progress=progress)
            with deterministic(threads):
                return {e: round(accuracy(st, x, y, spec.mean, spec.std), 4) for e, (x, y) in union.items()}

        own = []
        for i, owner in enumerate(("alice", "bob")):
            say(f"seed {seed}: what {owner} gets from a task of its own (dreams of its teacher alone)")
            own.append(dream([teachers[i]], n, spec.num_classes, spec.shape, spec.mean, spec.std, cfg,
                             progress=progress).images)
            rows[f"{owner} alone: student"] = student_acc([teachers[i]], own[-1], f"alone-{owner}")
        say(f"seed {seed}: another miner strategy: each teacher dreams alone, half the bundle each")
        merged = student_acc(teachers, torch.cat([own[0][:n // 2], own[1][:n - n // 2]]), "merged")
    rows["co-dreamed student"] = acc["student"]
    if merged is not None:
        rows["per-teacher dreams, merged"] = merged
    for k in ("teachers' ensemble", "noise baseline", "real-data student"):
        if k in acc:
            rows[k if k != "real-data student" else "pooled raw data student"] = acc[k]
    return {"seed": seed, "accuracy": rows, "n_dreams": n, "steps": card["training"]["recipe"]["steps"],
            "minor_share": minor, "owners": {o["name"]: {k: o[k] for k in ("classes", "train_images", "eval_images")}
                                             for o in info["owner_files"]},
            "beats_both_teachers_on_union": rows["co-dreamed student"]["union"] >
            max(rows["teacher alice"]["union"], rows["teacher bob"]["union"])}


# The probe's recipe: dreams that their model clearly puts in their class (cross-entropy first,
# weak BN and TV terms, mid-grey start, our optimiser). The miners' recipe (DeepInversion's, BN
# weight 10) makes dreams that a model trained on half the classes puts in the dreamed class less
# than half the time, which left co-owners who share labels no more compatible than strangers
# (alice-bob 0.05 vs alice-carol 0.04 on the demo's split; this recipe was the miners' in v2).
PROBE_RECIPE = dict(lr=0.25, bn=1.0, tv=2e-3, l2=0.0, init_data=False, init_std=0.2, cosine_lr=True)


def probe_dreams(per_class: int, steps: int, seed: int):
    """The probe function: ``per_class`` dreams per class from one model alone (``PROBE_RECIPE``)."""

    def probe(p: SimilarityParty) -> Probe:
        n = per_class * p.num_classes
        res = dream([p.model], n, p.num_classes, p.shape, p.mean, p.std,
                    DreamConfig(steps=steps, batch=n, seed=seed, **PROBE_RECIPE))
        return Probe(res.images, res.labels)

    return probe


def summarise(runs: list[dict]) -> dict:
    """Mean, min and max over seeds of every row and eval set."""
    rows = runs[0]["accuracy"].keys()
    out = {}
    for r in rows:
        out[r] = {}
        for e in EVALS:
            vals = [run["accuracy"][r][e] for run in runs]
            out[r][e] = {"mean": round(statistics.fmean(vals), 4), "min": min(vals), "max": max(vals)}
    return {"seeds": [run["seed"] for run in runs], "accuracy": out,
            "beats_both_teachers_on_union": all(run["beats_both_teachers_on_union"] for run in runs)}


def print_table(result: dict, con: Console) -> None:
    """The table `codream demo --co-owned` prints: rows = models, columns = eval sets."""
    acc = result["accuracy"]
    many = isinstance(next(iter(next(iter(acc.values())).values())), dict)
    title = ("Co-owned task: accuracy on each owner's eval set and on their union"
             + (f" (mean [min–max] over seeds {result['seeds']})" if many else f" (seed {result['seed']})"))
    table = Table(title=title)
    table.add_column("model")
    for e in EVALS:
        table.add_column(f"{e} eval" if e != "union" else "union (scored)", justify="right")
    for row, vals in acc.items():
        cell = (lambda v: f"{100 * v['mean']:.1f} % [{100 * v['min']:.1f}–{100 * v['max']:.1f}]") if many else \
               (lambda v: f"{100 * v:.1f} %")
        style = "bold green" if row.startswith(STUDENT) else None
        table.add_row(row, *(cell(vals[e]) for e in EVALS), style=style)
    con.print(table)
    ok = result["beats_both_teachers_on_union"]
    what = STUDENT.replace("co-dreamed", "co-dreamed (harvested)") if "harvest" in result else STUDENT
    con.print((f"[bold green]the {what} beats both owners' teachers on the union eval set[/]" if ok else
               f"[bold red]the {what} does NOT beat both teachers on the union eval set[/]")
              + (" in every seed" if many else ""))


def run_offline(work: str | Path, seeds: list[int], n: int = 1000, steps: int | None = None,
                json_out: Path | None = None, con: Console | None = None) -> dict:
    con = con or Console()
    runs = [coowned_round(Path(work) / f"seed-{s}", s, n, steps, say=lambda m: con.print(f"[cyan]▶[/] {m}"))
            for s in seeds]
    result = runs[0] if len(runs) == 1 else {**summarise(runs), "runs": runs}
    print_table(result, con)
    if json_out:
        json_out.write_text(json.dumps(result, indent=2))
    return result


# ----------------------------------------------------------------------------- on the devnet
def coowned_parties(n: int) -> list[Party]:
    refund = "gets back, pro rata to its contribution, what no accepted dream earned"
    return [Party("owner", "owner alice", 0, why=f"created the task: {eth(CONTRIBUTIONS['alice'])} + her eval "
                  f"commitment; {refund}"),
            Party("owner", "owner bob", 1, why=f"joined it: {eth(CONTRIBUTIONS['bob'])} + his eval commitment; "
                  f"{refund}"),
            Party("miner", "miner honest 1", 2, ["--n", str(n)]),
            Party("miner", "miner honest 2", 3, ["--n", str(n)]),
            *[Party("verifier", f"verifier {j + 1}", 4 + j, ["--stake", "1"]) for j in range(3)]]


class CoOwnedDemo(Demo):
    """`codream demo --co-owned`: the co-owned task as a real round on a local devnet."""

    def __init__(self, keep_up: bool = False, n: int = 300, con: Console | None = None, anvil_port: int = 8545,
                 ipfs_port: int = 5001, seed: int = 0, epochs: int = 40, steps: int | None = DEMO_HARVEST_STEPS,
                 threads: int = 1, claim: bool = True):
        super().__init__(keep_up, n, con, anvil_port, ipfs_port, claim)
        self.parties = coowned_parties(n)
        self.seed, self.epochs, self.steps, self.threads = seed, epochs, steps, threads

    def run(self) -> dict:
        t0 = time.monotonic()
        torch.set_num_threads(self.threads)  # seven agent processes share the cores during the round
        task_dir = self.dir / "task-co-owned"
        self.say("alice (mostly digits 0–4, digits_cnn) and bob (mostly 5–9, digits_deep) train their own teachers "
                 "on their own data; one task folder holds both teachers, each owner keeps its own eval set")
        info = build_coowned_task(task_dir, seed=self.seed, epochs=self.epochs, owners_dir=self.dir / "co-owners")
        for o in info["owner_files"]:
            self.say(f"{o['name']}: {o['train_images']} training images, {o['eval_images']} eval images, "
                     f"own teacher {o['own_eval_accuracy']:.1%} on its own eval set")
        devnet.down(*self.ports)
        t_up = time.monotonic()
        st = devnet.up(*self.ports)
        rpc, api = st["anvil"]["rpc_url"], st["ipfs"]["api"]
        self.say(f"devnet up: anvil at {rpc}, IPFS node at {api}, market and stake registry deployed")
        try:
            alice = self.chain = Chain(ChainConfig(rpc), load_account("dev:0"))
            bob = Chain(ChainConfig(rpc), load_account("dev:1"))
            ipfs = IpfsClient(api)
            net = self._net(rpc, st)
            self.warm_verifiers(net)
            created = create_task(alice, ipfs, task_dir, CONTRIBUTIONS["alice"], BOND, self.seats,
                                  self.seats_per_submission, [WINDOW] * 5, 1000,
                                  eval_path=task_dir / "evals" / "alice.safetensors")
            tid = created["task_id"]
            joined = join_task(bob, tid, task_dir / "evals" / "bob.safetensors", CONTRIBUTIONS["bob"], ipfs=ipfs)
            self.say(f"task {tid}: alice created it ({eth(CONTRIBUTIONS['alice'])}, spec {created['spec_cid']}, both "
                     f"teachers {created['declared_accuracy_bps'] / 100:.2f} % on her eval set), bob joined "
                     f"({eth(CONTRIBUTIONS['bob'])}, {joined['declared_accuracy_bps'] / 100:.2f} % on his); each "
                     "committed to its own eval set")
            for m in (p for p in self.parties if p.role == "miner"):
                self.spawn(m.name, "miner", "run", "--account", f"dev:{m.dev}", *m.args, "--task", str(tid),
                           "--until-idle", "--poll", "0.5", "--threads", "1", *net)
            self.say("3 verifiers and 2 honest miners run as separate processes; the miners dream against "
                     "both owners' teachers at once")

            def reveal_both():
                reveal_eval(alice, ipfs, tid)
                reveal_eval(bob, ipfs, tid)

            result = self.drive(alice, tid, reveal_both, "alice and bob revealed their eval sets (each seat checks "
                                                         "both, then scores on the union of those it judged OK)")
            t_round = time.monotonic() - t_up
            self.say(f"alice harvests task {tid} from the chain (accepted bundles, CIDs verified; "
                     f"measured on both revealed eval sets; {self.steps or 'full-length'} distillation steps)")
            m = manifest_from_chain(alice, tid, ipfs)
            card = harvest(m.spec, m.bundles, self.dir / f"harvest-{tid}", evals=eval_images_for(task_dir, m.spec),
                           steps=self.steps, task_id=tid, paid_wei=m.paid_wei, ipfs=ipfs, threads=self.threads,
                           log=self.say, teacher_names=[t["name"] for t in info["teachers"]])
            acc = card["accuracy"]
            rows = {"teacher alice": acc["teacher alice"], "teacher bob": acc["teacher bob"],
                    f"{STUDENT} (harvested)": acc["student"], "teachers' ensemble": acc["teachers' ensemble"],
                    "noise baseline": acc["noise baseline"]}
            table = {"seed": self.seed, "accuracy": rows, "harvest": str(self.dir / f"harvest-{tid}"),
                     "beats_both_teachers_on_union": acc["student"]["union"] > max(acc["teacher alice"]["union"],
                                                                                   acc["teacher bob"]["union"])}
            print_table(table, self.con)
            result.update(table, steps=card["training"]["recipe"]["steps"], images=card["training"]["images"],
                          paid_wei=m.paid_wei, round_seconds=round(t_round, 1),
                          seconds=round(time.monotonic() - t0, 1),
                          owners={o["name"]: {k: o[k] for k in ("classes", "train_images", "eval_images")}
                                  for o in info["owner_files"]})
            self.say(f"complete in {result['seconds']} s (the round, devnet up to settled: {result['round_seconds']} s)")
            self.con.print(f"Model card: {self.dir / f'harvest-{tid}' / 'MODEL_CARD.md'}; the same harvest by hand: "
                           f"[bold]codream task harvest {tid} --task-dir {task_dir} --out DIR[/]")
            return result
        finally:
            self.teardown()
