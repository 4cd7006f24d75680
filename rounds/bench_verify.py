"""`codream bench verify --task digits|mnist`: is the yardstick good enough to pay by?

Every number comes from the real checks (``codream/novelty.py``, ``codream/derived.py``) and the
real yardstick (``codream/yardstick.py``) on real dreams; nothing is simulated. Sections:

- **stability**: the raw distillation gain of an honest bundle H over ``seeds`` recipe seeds (a
  committee's per-bundle seed), for H, H reordered, H twice, H ∪ H2 (an independent honest
  bundle), H ∪ H shifted / rotated — with the reference recipe of verification v2 ("before") and
  of v3 ("after"). Goal: standard deviation ≤ 2 % of the honest score.
- **grinding**: a miner who knows the seed tries ``grind`` variants of its bundle (reorderings; and
  subsets dropping 2 % of the images) and keeps the best; then the real, unknown seeds score it.
  Goal: nothing gained in expectation.
- **copies**: every cheat built from H (shifts, rotations, blends, re-optimisation 5–20 steps,
  elastic and perspective warps, patch mixes, composites, each also diluted 50 % with fresh
  dreams), checked against the earlier submissions and the eval set, then scored if VALID: what
  it earns as a share of H (goal ≤ 10 %); and k disguised copies under k addresses after H
  (goal: together ≤ 1.1 × H).
- **honest**: each independent honest bundle after the others: the share of its images flagged
  (goal ≤ 1 %) and the share of its standalone score it keeps (goal ≥ 90 %).
- **marginal**: the gain of H ∪ X over H for X = an independent honest bundle and each copy, with
  its spread over seeds: what a bundle *adds* (data valuation; DESIGN "pay follows marginal
  usefulness").
- **cost**: the whole score (checks + students) against the synthesis time of the same bundle
  (goal ≤ 0.1).

Points are cached in ``WORKDIR/TASK-verify-points.json`` (and the bundles beside it), so an
interrupted run resumes; ``--budget`` stops starting new points after that many seconds and the
report lists what it left out.
"""
from __future__ import annotations

import copy
import hashlib
import importlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

from codream import bundle as B, config
from codream.bundle import Binding
from codream.devchain import DEVNET_CHAIN_ID
from codream.evalset import load_eval_set
from codream.novelty import reference
from codream.derived import bundle_similarity
from codream import arithmetic, receipt as receipts
from codream.spec import TaskSpec, derived_config, load as load_spec, receipt_config
from codream.teachers import load_teachers
from codream.yardstick import gain_bps, noise_accuracy, student_accuracies
from miner import cheats
from miner.methods import synthesize
from codream.synthesis import DreamConfig, DreamTask, deepinversion_config, dream, dream_shard
from owner.teacher import train_reference
from verifier.validate import validate_bytes
from verifier.score import clear_memo, score_verdict

TASKS = ("digits", "mnist")
REF = Binding(DEVNET_CHAIN_ID, "0x" + "ab" * 20, 1, "0x" + "cd" * 20)


def _v2_recipe(spec: TaskSpec) -> TaskSpec:
    """The task's reference recipe as verification v2 scored with (the "before" column)."""
    old = copy.deepcopy(spec)
    old.raw["distill"].pop("ema", None)
    old.raw["distill"].pop("students", None)
    old.raw["baseline"].pop("seeds", None)
    if spec.name == "mnist-reference":
        old.raw["student"] = dict(old.raw["student"], width=8)
        old.raw["distill"].update(steps=300, batch=128)
    return old


# The modules whose code decides a verdict or a score: a point measured by other code is not reused.
VERDICT_MODULES = ("codream.novelty", "codream.derived", "codream.yardstick", "codream.distill",
                   "verifier.validate", "verifier.score", "miner.cheats", "codream.synthesis", "codream.receipt")


def code_fingerprint(spec: TaskSpec) -> str:
    """SHA-256 over the task spec and the source of ``VERDICT_MODULES`` (a point's key names
    what it measures: a cheat or a section whose construction changes gets a new name)."""
    h = hashlib.sha256(json.dumps(spec.raw, sort_keys=True).encode())
    for name in VERDICT_MODULES:
        h.update(Path(importlib.import_module(name).__file__).read_bytes())
    return h.hexdigest()[:16]


class VerifyBench:
    def __init__(self, task: str, workdir: Path, seeds: int, budget: float | None, threads: int,
                 log: Callable[[str], None] = print):
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r} (known: {', '.join(TASKS)})")
        self.task, self.seeds, self.threads, self.log = task, seeds, threads, log
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.deadline = None if budget is None else time.monotonic() + budget
        self.skipped: list[str] = []
        tdir = self.workdir / f"{task}-task"
        if not (tdir / "spec.json").exists():
            log(f"training the {task} reference teacher into {tdir}")
            train_reference(task, tdir, progress=False)
        # the sections below measure the pixel checks and the score, so bundles are judged without
        # the receipt requirement (none of them carries one); the receipts section replays receipts
        self.spec = receipts.requiring(load_spec(tdir / "spec.json"), False)
        self.teachers = load_teachers(self.spec)
        self.ev = load_eval_set(tdir / "eval.safetensors", self.spec)
        self.points_path = self.workdir / f"{task}-verify-points.json"
        self.points: dict = json.loads(self.points_path.read_text()) if self.points_path.exists() else {}
        code = code_fingerprint(self.spec)
        if self.points.get("_code") != code:  # measured by other code or another spec: not reusable
            if self.points:
                stale = self.points_path.with_suffix(f".stale-{str(self.points.get('_code'))[:8]}.json")
                self.points_path.replace(stale)
                log(f"{self.points_path.name} was measured by other verifier code: kept as {stale.name}, starting over")
            self.points = {"_code": code}

    # -- caching and budget --------------------------------------------------------------------
    def point(self, key: str, compute: Callable[[], dict]) -> dict | None:
        if key in self.points:
            return self.points[key]
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.skipped.append(key)
            return None
        t0 = time.perf_counter()
        value = compute()
        value["_seconds"] = round(time.perf_counter() - t0, 2)
        self.points[key] = value
        tmp = self.points_path.with_suffix(".part")
        tmp.write_text(json.dumps(self.points, indent=1, sort_keys=True))
        tmp.replace(self.points_path)
        self.log(f"{key}: done in {value['_seconds']} s")
        return value

    # -- inputs --------------------------------------------------------------------------------
    def honest(self) -> dict[str, torch.Tensor]:
        """Four independent honest 1,000-dream bundles (three seeds of one method, one of another),
        synthesised once and kept beside the points with their synthesis time."""
        recipes = self.HONEST_BUNDLES[self.task]
        out = {}
        for name, (method, seed) in recipes.items():
            path = self.workdir / f"{self.task}-{method}-s{seed}.safetensors"
            if not path.exists():
                self.log(f"dreaming 1,000 images: {name}")
                images, seconds = self.dream_honest(method, seed)
                save_file({"images": images.contiguous()}, str(path),
                          metadata={"seconds": f"{seconds:.2f}", "threads": str(self.threads)})
            out[name] = load_file(str(path))["images"]
        return out

    HONEST_RECIPES = {"digits": ("pixel", 0), "mnist": ("di100", 0)}  # H, the bundle every section copies
    HONEST_BUNDLES = {"digits": {"pixel s0": ("pixel", 0), "pixel s1": ("pixel", 1), "pixel s2": ("pixel", 2),
                                 "DeepInversion-50 s3": ("di50", 3)},
                      "mnist": {"DeepInversion-100 s0": ("di100", 0), "DeepInversion-100 s1": ("di100", 1),
                                "DeepInversion-100 s2": ("di100", 2), "generator s3": ("generator", 3)}}

    def dream_honest(self, method: str, seed: int) -> tuple[torch.Tensor, float]:
        """1,000 honest dreams of ``method`` (``pixel``, ``generator``, ``diN``: DeepInversion N
        steps) and the seconds they took, on this bench's threads."""
        s = self.spec
        torch.set_num_threads(self.threads)
        t0 = time.perf_counter()
        if method.startswith("di"):
            cfg = deepinversion_config(seed=seed, steps=int(method[2:]), image_size=s.shape[1], lr=0.1)
            images = dream(self.teachers, 1000, s.num_classes, s.shape, s.mean, s.std, cfg).images
        else:
            images = synthesize(s, self.teachers, 1000, method=method, seed=seed).images
        return images, time.perf_counter() - t0

    def raw_gain(self, spec: TaskSpec, images: torch.Tensor, seed: int) -> float:
        """The distillation gain of all ``images`` (no checks); v2's recipe trains on the images in
        the order given, as v2 did, v3's in the canonical order."""
        base = noise_accuracy(spec, self.teachers, self.ev, self.threads)["accuracy"]
        accs = student_accuracies(spec, self.teachers, images, self.ev, seed, self.threads,
                                  in_canonical_order=spec is self.spec)
        return gain_bps(sum(accs) / len(accs), base)

    def verdict(self, images: torch.Tensor, earlier: dict[str, torch.Tensor], seed: int = 0) -> dict:
        """What the verifier says and pays: the real validation (near-twins + derived work) against
        ``earlier`` (commit order) and the eval set, then the score if VALID."""
        refs = [reference("earlier_submission", k, v, self.spec) for k, v in earlier.items()]
        with tempfile.TemporaryDirectory() as tmp:
            path = B.write(Path(tmp) / "b.safetensors", images, REF)
            t0 = time.perf_counter()
            v = validate_bytes(path.read_bytes(), self.spec, REF, refs, None, self.ev[0])
            check_s = time.perf_counter() - t0
        out = {"verdict": "VALID" if v.valid else "INVALID", "reasons": [r["code"] for r in v.reasons],
               "derived_fraction": v.derived.fraction if v.derived else None,
               "not_novel_fraction": round(1 - v.novelty.novel_fraction, 4) if v.novelty else None,
               "check_seconds": round(check_s, 3)}
        if v.valid:
            clear_memo()
            t0 = time.perf_counter()
            r = score_verdict(self.spec, self.teachers, v, self.ev, self.threads, seed=seed)
            out.update(score_bps=r["score_bps"], score_seconds=round(time.perf_counter() - t0, 3))
        else:
            out["score_bps"] = 0
        min_gain = self.spec.scoring.min_gain_bps
        out["earned_bps"] = out["score_bps"] if out["verdict"] == "VALID" and out["score_bps"] >= min_gain else 0
        return out

    # -- sections ------------------------------------------------------------------------------
    def cheats(self, h: torch.Tensor, h3: torch.Tensor, fresh: torch.Tensor) -> dict[str, torch.Tensor]:
        big = self.spec.shape[1] >= 28
        s = self.spec
        c = {
            "shifted 2 px": cheats.shift(h, 2),
            "rotated +10°": cheats.rotate(h, 10), "rotated −10°": cheats.rotate(h, -10),
            "rotated +20°": cheats.rotate(h, 20),
            "70/30 blend with another earlier bundle": cheats.blend(h, h3, 0.7),
            "50/50 blends of pairs within H": cheats.blend_pairs(h),
            "re-optimised 5 steps (lr 0.25)": cheats.reoptimise(h, self.teachers, s.mean, s.std, 5, 0.25),
            "re-optimised 5 steps (lr 0.05)": cheats.reoptimise(h, self.teachers, s.mean, s.std, 5, 0.05),
            "re-optimised 10 steps (lr 0.25)": cheats.reoptimise(h, self.teachers, s.mean, s.std, 10, 0.25),
            "re-optimised 20 steps (lr 0.25)": cheats.reoptimise(h, self.teachers, s.mean, s.std, 20, 0.25),
            "elastic warp": cheats.elastic(h, 2.0 if big else 1.0, 4.0 if big else 2.0),
            "perspective warp": cheats.perspective(h, 0.08),
            "patches of several sources": cheats.patchmix([h, h3]),
            "composite (shift, contrast, noise)": cheats.composite(h),
            "rotated 10° then blended 70/30": cheats.blend(cheats.rotate(h, 10), h3, 0.7),
        }
        for k in list(c):
            c[f"{k} + 50 % fresh"] = torch.cat([c[k][: len(h) // 2], fresh[len(h) // 2:]])
        return c

    def run(self) -> dict:
        honest = self.honest()
        names = list(honest)
        h, h2, h3, x = (honest[n] for n in names)
        res: dict = {"task": self.task, "seeds": self.seeds, "threads": self.threads, "honest_bundles": names,
                     "arithmetic": arithmetic.describe(receipt_config(self.spec)["arithmetic"])}
        specs = {"before (v2 recipe)": _v2_recipe(self.spec), "after (v3 recipe)": self.spec}
        g = torch.Generator().manual_seed(7)
        variants = {"H": h, "H reordered": h[torch.randperm(len(h), generator=g)], "H twice": torch.cat([h, h]),
                    "H ∪ H2": torch.cat([h, h2]), "H ∪ H shifted 2 px": torch.cat([h, cheats.shift(h, 2)]),
                    "H ∪ H rotated 10°": torch.cat([h, cheats.rotate(h, 10)])}
        # -- stability ------------------------------------------------------------------------
        stab = {}
        for label, spec in specs.items():
            rows = {}
            for vname, images in variants.items():
                gains = []
                for seed in range(self.seeds):
                    p = self.point(f"stability/{label}/{vname}/seed={seed}",
                                   lambda: {"gain_bps": self.raw_gain(spec, images, seed)})
                    if p:
                        gains.append(p["gain_bps"])
                if gains:
                    m = statistics.mean(gains)
                    sd = statistics.stdev(gains) if len(gains) > 1 else None
                    rows[vname] = {"gains_bps": gains, "mean": round(m), "std": None if sd is None else round(sd),
                                   "std_share_of_mean": None if sd is None or not m else round(sd / m, 4)}
            stab[label] = rows
        res["stability"] = stab
        # -- honest ---------------------------------------------------------------------------
        hon = []
        for i, name in enumerate(names):
            def honest_point(name=name, i=i):
                earlier = {o: honest[o] for o in names[:i]}
                after = self.verdict(honest[name], earlier)
                alone = self.verdict(honest[name], {})
                return {"after_others": after, "standalone": alone}
            p = self.point(f"honest/{name}", honest_point)
            if p:
                a, s0 = p["after_others"], p["standalone"]
                hon.append({"bundle": name, "earlier_bundles": i, "flagged_share": a["not_novel_fraction"],
                            "derived_share": a["derived_fraction"], "verdict": a["verdict"],
                            "score_bps": a["score_bps"], "standalone_bps": s0["score_bps"],
                            "kept_share": round(a["score_bps"] / s0["score_bps"], 4) if s0["score_bps"] else None})
        res["honest"] = hon
        # -- copies ---------------------------------------------------------------------------
        honest_pay = self.point("copies/H itself", lambda: self.verdict(h, {}))
        cheat_sets = self.cheats(h, h3, x)
        rows = []
        for name, images in cheat_sets.items():
            p = self.point(f"copies/{name}", lambda images=images: self.verdict(images, {"H": h, "H3": h3}))
            if p and honest_pay:
                rows.append({"cheat": name, **{k: p[k] for k in ("verdict", "reasons", "derived_fraction", "earned_bps")},
                             "share_of_honest": round(p["earned_bps"] / honest_pay["earned_bps"], 4)
                             if honest_pay["earned_bps"] else None})
        res["copies"] = {"honest_bps": honest_pay and honest_pay["earned_bps"], "rows": rows}

        res["equal_cost"] = self.equal_cost(rows, honest_pay)

        # -- bundle-level similarity (measured, not a rule): honest pairs against each copy -------
        def similarity():
            cfg = derived_config(self.spec)
            pairs = [bundle_similarity(honest[b], honest[a], cfg) for a in names for b in names if a != b]
            span = {k: [min(p[k] for p in pairs), max(p[k] for p in pairs)] for k in pairs[0]}
            return {"honest_pairs": len(pairs), "honest_min_max": span,
                    "copies_of_H": {name: bundle_similarity(images, h, cfg) for name, images in cheat_sets.items()}}
        res["bundle_similarity"] = self.point("bundle similarity", similarity)

        def sybil():
            big = self.spec.shape[1] >= 28
            copies = {"rotated 10°": cheats.rotate(h, 10), "blended 70/30": cheats.blend(h, h3, 0.7),
                      "re-optimised 5 steps": cheats.reoptimise(h, self.teachers, self.spec.mean, self.spec.std, 5, 0.25),
                      "elastic warp": cheats.elastic(h, 2.0 if big else 1.0, 4.0 if big else 2.0)}
            earlier, total, each = {"H": h}, 0, []
            for name, images in copies.items():  # each under its own address, committed after H and the others
                v = self.verdict(images, earlier)
                each.append({"copy": name, "verdict": v["verdict"], "earned_bps": v["earned_bps"]})
                total += v["earned_bps"]
                earlier[name] = images
            return {"copies": each, "copies_earned_bps": total}
        sy = self.point("copies/4 disguised copies under 4 addresses", sybil)
        if sy and honest_pay and honest_pay["earned_bps"]:
            sy["total_share_of_one_bundle"] = round((honest_pay["earned_bps"] + sy["copies_earned_bps"]) /
                                                    honest_pay["earned_bps"], 4)
        res["sybil"] = sy
        # -- receipts -------------------------------------------------------------------------
        res["receipts"] = self.point("receipts", lambda: self.receipts(honest, h2, h3, x, rows, honest_pay))
        # -- grinding -------------------------------------------------------------------------
        res["grinding"] = self.grinding(h)
        # -- marginal -------------------------------------------------------------------------
        marg = {}
        unions = {"H (alone)": h, "H ∪ H2 (independent honest)": torch.cat([h, h2]),
                  "H ∪ H rotated 10°": torch.cat([h, cheats.rotate(h, 10)]),
                  "H ∪ H shifted 2 px": torch.cat([h, cheats.shift(h, 2)]),
                  "H ∪ 70/30 blend": torch.cat([h, cheats.blend(h, h3, 0.7)]),
                  "H ∪ H re-optimised 5 steps": torch.cat([h, cheat_sets["re-optimised 5 steps (lr 0.25)"]])}
        for name, images in unions.items():
            gains = []
            for seed in range(self.seeds):
                p = self.point(f"marginal/{name}/seed={seed}", lambda images=images, seed=seed:
                               {"gain_bps": self.raw_gain(self.spec, images, seed)})
                if p:
                    gains.append(p["gain_bps"])
            if gains:
                marg[name] = {"mean": round(statistics.mean(gains)),
                              "std": round(statistics.stdev(gains)) if len(gains) > 1 else None}
        if "H (alone)" in marg:
            for v in marg.values():
                v["adds_bps"] = v["mean"] - marg["H (alone)"]["mean"]
        res["marginal"] = marg
        # -- cost -----------------------------------------------------------------------------
        def cost():  # side by side in one process: H's synthesis again (the same bundle), then a whole check + score
            clear_memo()
            noise_accuracy(self.spec, self.teachers, self.ev, self.threads)  # the task's constant, untimed
            again, synth = self.dream_honest(*self.HONEST_RECIPES[self.task])
            t0 = time.perf_counter()
            v = self.verdict(h2, {"H": h, "H3": h3})
            whole = time.perf_counter() - t0
            out = {"check_and_score_seconds": round(whole, 2), "check_seconds": v["check_seconds"],
                   "score_seconds": v.get("score_seconds"), "synthesis_seconds": round(synth, 2),
                   "synthesis_is_h": bool(torch.equal(again, h)), "ratio": round(whole / synth, 3)}
            rec = self.honest_receipt(*self.HONEST_RECIPES[self.task])
            if rec is not None:  # what a seat adds where the task requires receipts: one shard dreamed again
                t0 = time.perf_counter()
                rep = receipts.replay(rec, again, receipts.requiring(self.spec), self.teachers, seed=0)
                took = time.perf_counter() - t0
                out.update(replay_seconds=round(took, 2), replay_ok=rep["ok"],
                           ratio_with_receipt=round((whole + took) / synth, 3))
            return out
        res["cost"] = self.point("cost (synthesis timed beside)", cost)
        res["goals"] = self.goals(res)
        res["left_out"] = self.skipped
        return res

    def honest_receipt(self, method: str, seed: int):
        """The synthesis receipt of the honest bundle ``dream_honest(method, seed)`` dreams (None for
        the generator, which cannot be replayed in part)."""
        s = self.spec
        if method.startswith("di"):
            return receipts.of_config(deepinversion_config(seed=seed, steps=int(method[2:]), image_size=s.shape[1],
                                                           lr=0.1), 1000)
        return receipts.of_config(DreamConfig.for_shape(s.shape, seed=seed), 1000) if method == "pixel" else None

    def receipts(self, honest: dict, h2: torch.Tensor, h3: torch.Tensor, x: torch.Tensor, rows: list[dict],
                 honest_pay: dict | None) -> dict:
        """Synthesis receipts (``codream/receipt.py``) against every copy: which shards of a copy
        that carries the honest bundle's receipt fail their replay, hence the probability a
        committee's replay catches it (a caught bundle is INVALID and loses its bond), and what it
        can earn at most in expectation. Every shard of every honest bundle with a receipt is
        replayed, so the replay's cost is measured against the synthesis it repeats.

        The copies are made from the replay of H's receipt (what today's recipe makes of H's seeds;
        the stored H may predate a change of the recipe's seeding) and checked shard by shard:
        whether a committee replays shard k depends only on its seed, so the catch probability is
        the kept-image weight of the failing shards, exactly."""
        spec_r = receipts.requiring(self.spec)
        min_cos = float(receipt_config(spec_r)["min_cosine"])
        recipes = self.HONEST_BUNDLES[self.task]
        out: dict = {"min_cosine": min_cos, "honest": {}}
        replays, shard_seconds = {}, []
        for name, (method, seed) in recipes.items():
            rec = self.honest_receipt(method, seed)
            if rec is None:
                out["honest"][name] = "no receipt: the generator cannot be replayed in part"
                continue
            task = DreamTask(self.teachers, 1000, self.spec.num_classes, tuple(self.spec.shape), self.spec.mean,
                             self.spec.std, rec.dream_config(0))
            parts = []
            for k in range(task.shards):
                t0 = time.perf_counter()
                parts.append(dream_shard(task, k).images)
                shard_seconds.append((time.perf_counter() - t0, task.span(k)[1] - task.span(k)[0]))
            replays[name] = (rec, torch.cat(parts))
            # the stored bundle may predate a change of the recipe's seeding (then its own receipt
            # would not match it: the copies below are made from the replay instead)
            out["honest"][name] = {"shards": task.shards,
                                   "stored_bundle_is_its_replay": bool(torch.equal(replays[name][1], honest[name]))}
        h_rec, hr = replays[list(recipes)[0]]
        h2_rec, h2r = replays[list(recipes)[1]]

        def caught(images: torch.Tensor, rec, reference: torch.Tensor) -> float:
            """Kept-image share of the shards of ``images`` (under ``rec``) that fail their replay."""
            cos = receipts.centred_cosine(images, reference)
            failing = {rec.shard_of(o) for k, o in enumerate(rec.origins()) if cos[k] < min_cos}
            w = rec.shard_weights()
            return sum(w[u] for u in failing) / sum(w.values())

        half = len(hr) // 2
        diluted_rec = None  # two recipes cannot share a receipt: a receipt has one config
        if h2_rec.config == h_rec.config:
            diluted_rec = receipts.kept([h_rec, h2_rec], [(0, i) for i in range(half)] +
                                        [(1, i) for i in range(half, len(h2r))])
        copies = {k: v for k, v in self.cheats(hr, h3, x).items() if not k.endswith("+ 50 % fresh")}
        best = max([r["earned_bps"] for r in rows] + [honest_pay["earned_bps"] if honest_pay else 0])
        base = honest_pay["earned_bps"] if honest_pay else None
        fresh_half = self.verdict(h2r[half:], {})["earned_bps"]
        crow, p_caught = [], {}
        for name, images in copies.items():
            p_full = p_caught[name] = caught(images, h_rec, hr)
            row = {"copy": name, "caught_full_copy": round(p_full, 4),
                   "at_most_share_of_honest": round((1 - p_full) * best / base, 4) if base else None}
            if diluted_rec is not None:
                mixed = torch.cat([images[:half], h2r[half:]])
                p_half = caught(mixed, diluted_rec, torch.cat([hr[:half], h2r[half:]]))
                row["caught_with_50_percent_fresh"] = round(p_half, 4)
                # the copier's best case (no bond): paid the most any bundle earned when not caught,
                # against what its fresh half alone earns
                row["beyond_its_fresh_half_share_of_honest"] = (round(((1 - p_half) * best - fresh_half) / base, 4)
                                                                 if base else None)
            crow.append(row)
        out["copies"] = crow
        out["fresh_half_alone_bps"] = fresh_half
        out["best_earned_bps"] = best
        secs = sum(t for t, _ in shard_seconds)
        imgs = sum(n for _, n in shard_seconds)
        out["cost"] = {"replay_seconds_per_image": round(secs / imgs, 5),
                       "one_shard_share_of_synthesis": round(max(n for _, n in shard_seconds) / 1000, 4),
                       "note": "a replay is one shard of the bundle's synthesis: batch / n of it"}
        # four disguised copies under four addresses after H, each with H's receipt
        out["sybil_total_share_of_one_bundle"] = round(
            1 + sum((1 - p_caught[name]) * best / base
                    for name in ("rotated +10°", "70/30 blend with another earlier bundle", "re-optimised 5 steps (lr 0.25)",
                                 "elastic warp")), 4) if base else None
        return out

    EQUAL_COST_STEPS = (5, 10, 20)  # the re-optimised copies' step counts (and one between)

    def equal_cost(self, rows: list[dict], honest_pay: dict | None) -> dict | None:
        """What honest work of each copy's cost earns, and what the copy earns beyond it.

        A copy is theft only of what it earns beyond what its copier's own compute would have
        earned honestly: honest bundles dreamed from noise with the task's pixel recipe at the
        re-optimised copies' step counts (one seed, standalone), against each copy. A re-optimised
        copy of k steps costs k steps of the same loop; warps, rotations, shifts, blends and patch
        mixes cost nothing (an honest bundle of 0 steps is noise, which earns 0)."""
        if not rows or not honest_pay:
            return None
        full = self.point("equal cost/honest at the recipe's own steps", lambda: self.verdict(
            synthesize(self.spec, self.teachers, 1000, "pixel", 11).images, {}))
        honest_at = {}
        for k in self.EQUAL_COST_STEPS:
            p = self.point(f"equal cost/honest from noise, {k} steps", lambda k=k: self.verdict(
                synthesize(self.spec, self.teachers, 1000, "pixel", 11, steps=k).images, {}))
            if p:
                honest_at[k] = p["earned_bps"]
        if not full or len(honest_at) < len(self.EQUAL_COST_STEPS):
            return None
        return {"recipe_steps": DreamConfig.for_shape(self.spec.shape).steps, "honest_full_cost_bps": full["earned_bps"],
                "honest_from_noise_bps": {str(k): v for k, v in honest_at.items()},
                "rows": beyond_equal_cost(rows, honest_at, full["earned_bps"], honest_pay["earned_bps"])}

    def grinding(self, h: torch.Tensor) -> dict | None:
        """A miner who knows the seed (v2: the spec's) keeps the best of ``grind`` variants of its
        bundle; v3 scores with a seed it cannot know. Reorderings: identical by construction
        (canonical order); subsets dropping 2 % of the images: the chosen variant vs the plain
        bundle under fresh seeds."""
        grind = 8 if self.task == "mnist" else 20
        def compute():
            g = torch.Generator().manual_seed(11)
            perms = [h[torch.randperm(len(h), generator=g)] for _ in range(3)]
            order_scores = [self.raw_gain(self.spec, p, 0) for p in perms]
            keep = len(h) - len(h) // 50
            subsets = [h[torch.randperm(len(h), generator=g)[:keep]] for _ in range(grind)]
            known = [self.raw_gain(self.spec, s, 0) for s in subsets]
            best = subsets[max(range(grind), key=known.__getitem__)]
            fresh_seeds = range(101, 101 + self.seeds)
            best_fresh = [self.raw_gain(self.spec, best, s) for s in fresh_seeds]
            plain_fresh = [self.raw_gain(self.spec, h, s) for s in fresh_seeds]
            adv = [b - p for b, p in zip(best_fresh, plain_fresh)]
            return {"reorderings_gain_bps": order_scores, "reorderings_identical": len(set(order_scores)) == 1,
                    "variants": grind, "best_at_known_seed_bps": max(known), "median_at_known_seed_bps":
                    statistics.median(known), "best_at_fresh_seeds_bps": best_fresh,
                    "plain_at_fresh_seeds_bps": plain_fresh, "advantage_bps_mean": round(statistics.mean(adv), 1),
                    "advantage_bps_std": round(statistics.stdev(adv), 1) if len(adv) > 1 else None}
        return self.point("grinding", compute)

    @staticmethod
    def goals(res: dict) -> dict:
        out = {}
        after = res["stability"].get("after (v3 recipe)", {})
        shares = [v["std_share_of_mean"] for v in after.values() if v.get("std_share_of_mean") is not None]
        if shares:
            out["stability: std ≤ 2 % of the honest score (every variant)"] = {"worst": max(shares), "met": max(shares) <= 0.02}
        rows = res["copies"]["rows"]
        if rows:
            worst = max(rows, key=lambda r: r["share_of_honest"] or 0)
            out["copies: each earns ≤ 10 % of the honest bundle"] = {
                "worst": worst["cheat"], "share": worst["share_of_honest"],
                "met": all((r["share_of_honest"] or 0) <= 0.10 for r in rows),
                "not_met_by": [r["cheat"] for r in rows if (r["share_of_honest"] or 0) > 0.10]}
        eq = res.get("equal_cost")
        if eq:
            worst = max(eq["rows"], key=lambda r: r["excess_share_of_honest"] or 0)
            out["copies: each earns ≤ 10 % of the honest bundle beyond honest work of its own cost (measured, "
                "not the issue's goal)"] = {
                "worst": worst["cheat"], "excess_share": worst["excess_share_of_honest"],
                "met": all((r["excess_share_of_honest"] or 0) <= 0.10 for r in eq["rows"]),
                "not_met_by": [r["cheat"] for r in eq["rows"] if (r["excess_share_of_honest"] or 0) > 0.10]}
        if res.get("sybil") and "total_share_of_one_bundle" in res["sybil"]:
            t = res["sybil"]["total_share_of_one_bundle"]
            out["k disguised copies + the original ≤ 1.1 × one bundle"] = {"value": t, "met": t <= 1.1}
        rc = res.get("receipts")
        if rc and rc.get("copies"):
            worst = max(rc["copies"], key=lambda r: r["at_most_share_of_honest"] or 0)
            out["with receipts: each copy earns ≤ 10 % of the honest bundle (at most, in expectation)"] = {
                "worst": worst["copy"], "share": worst["at_most_share_of_honest"],
                "met": all((r["at_most_share_of_honest"] or 0) <= 0.10 for r in rc["copies"])}
            diluted = [r for r in rc["copies"] if r.get("beyond_its_fresh_half_share_of_honest") is not None]
            if diluted:
                w = max(diluted, key=lambda r: r["beyond_its_fresh_half_share_of_honest"])
                out["with receipts: a copy diluted 50 % earns ≤ 10 % beyond its fresh half (at most, in expectation)"] = {
                    "worst": w["copy"], "share": w["beyond_its_fresh_half_share_of_honest"],
                    "met": all(r["beyond_its_fresh_half_share_of_honest"] <= 0.10 for r in diluted)}
            if rc.get("sybil_total_share_of_one_bundle") is not None:
                t = rc["sybil_total_share_of_one_bundle"]
                out["with receipts: k disguised copies + the original ≤ 1.1 × one bundle"] = {"value": t, "met": t <= 1.1}
        hon = [r for r in res["honest"] if r["earlier_bundles"]]
        if hon:
            out["honest: ≤ 1 % of images flagged"] = {"worst": max(r["flagged_share"] for r in hon),
                                                      "met": all(r["flagged_share"] <= 0.01 for r in hon)}
            kept = [r["kept_share"] for r in hon if r["kept_share"] is not None]
            if kept:
                out["honest: keeps ≥ 90 % of its standalone score"] = {"worst": min(kept), "met": min(kept) >= 0.9}
        gr = res.get("grinding")
        if gr:
            out["grinding: no gain in expectation"] = {"advantage_bps_mean": gr["advantage_bps_mean"],
                                                       "advantage_bps_std": gr["advantage_bps_std"],
                                                       "reorderings_identical": gr["reorderings_identical"]}
        if res.get("cost") and "ratio" in res["cost"]:
            c = res["cost"]
            ratio = c.get("ratio_with_receipt", c["ratio"])  # the reference tasks' seats replay a shard too
            out["cost: whole score ≤ 0.1 × synthesis"] = {"ratio": ratio, "without_the_receipt_replay": c["ratio"],
                                                          "met": ratio <= 0.1}
        return out


def beyond_equal_cost(rows: list[dict], honest_at: dict[int, int], full_bps: int, honest_bps: int) -> list[dict]:
    """Each copy's pay against what honest work of its cost earns. ``rows``: the copies section's
    rows (``cheat``, ``earned_bps``); ``honest_at``: what an honest bundle dreamed from noise at k
    steps earns; ``full_bps``: at the recipe's own steps. A copy named "re-optimised k steps"
    costs k steps; any other costs nothing (what noise earns: 0); "+ 50 % fresh": half of it is
    honest work at the recipe's steps, so its equal-cost pay is the mean of the two halves'."""
    out = []
    for r in rows:
        name = r["cheat"]
        steps = next((k for k in sorted(honest_at) if f"re-optimised {k} steps" in name), 0)
        own = honest_at[steps] if steps else 0
        equal = round((own + full_bps) / 2) if "+ 50 % fresh" in name else own
        out.append({"cheat": name, "copy_steps": steps, "earned_bps": r["earned_bps"],
                    "honest_at_equal_cost_bps": equal, "excess_bps": r["earned_bps"] - equal,
                    "excess_share_of_honest": round((r["earned_bps"] - equal) / honest_bps, 4) if honest_bps else None})
    return out


def bench_verify(task: str = "digits", workdir: Path | None = None, seeds: int = 5, budget: float | None = None,
                 threads: int = 1, log: Callable[[str], None] = print) -> dict:
    workdir = Path(workdir) if workdir else config.home() / "cache" / "bench-verify"
    return VerifyBench(task, workdir, seeds, budget, threads, log).run()
