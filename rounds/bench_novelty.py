"""`codream bench verify --novelty`: the novelty check's false-positive / detection table on the
digits reference task, with real dreams.

- **False positives**: independent honest bundles (different seeds, step counts, DeepInversion's
  recipe, the generator) each checked against all the others committed before it and against
  the eval set: the share of honest images flagged (goal ≤ 1 %).
- **Detection**: each cheat of ``miner/cheats.py`` applied to one honest bundle and checked
  against that bundle as an earlier submission; the eval images (and noised ones) against the
  eval set; a union of two earlier bundles; half copy, half fresh; mode collapse.
- **What cheats earn**: the honest bundle's score, the total score of k transformed copies of
  it under k addresses committed after it (goal: ≤ 1.1 × the one bundle, in total, including
  the original), and the score of a bundle of eval images.

Every number comes from one run of the real check and the real scorer; nothing is simulated.
"""
from __future__ import annotations

import tempfile
import time

import torch
from rich.console import Console
from rich.table import Table

from miner import cheats
from miner.methods import synthesize
from codream.synthesis import DreamConfig, deepinversion_config, dream
from codream.novelty import check_novelty, reference
from verifier.score import clear_memo, novel_score, score_images

from .bench import digits_reference

SYBIL = ("shift1", "hflip", "noise32", "composite")


def _index_cost(honest: dict, spec, teachers, ev, bundles: int, per: int = 1000, repeats: int = 3) -> dict:
    """Novelty check time with ``bundles`` earlier tasks' bundles of ``per`` images in the index,
    against the time to score the bundle (goal ≤ 15 %), for a query bundle of ``per`` images (the
    first two honest bundles). The index holds synthetic stand-ins made from the other honest
    bundles (blends of two dreams, rotated / flipped): their cost, not their realism, is
    measured here. Check and score alternate ``repeats`` times; the ratio is the median of the
    side-by-side pairs (the machine's load moves both)."""
    names = list(honest)
    images = torch.cat([honest[names[0]], honest[names[1]]])[:per]
    pool = torch.cat([honest[k] for k in names[2:]]).float()
    g = torch.Generator().manual_seed(0)
    refs = []
    for b in range(bundles):
        i = torch.randint(0, len(pool), (per,), generator=g)
        j = torch.randint(0, len(pool), (per,), generator=g)
        lam = 0.25 + 0.5 * torch.rand(per, 1, 1, 1, generator=g)
        x = (lam * pool[i] + (1 - lam) * pool[j]).rot90(b % 4, (2, 3))
        x = x.flip(3) if (b // 4) % 2 else x
        refs.append(reference("earlier_task", f"stand-in {b}", x.round().clamp(0, 255).to(torch.uint8)))

    class Stored:  # what check_novelty asks of a verifier.index.NoveltyIndex
        def references(self, teacher_cids):
            return refs

    t0 = time.perf_counter()
    r = check_novelty(images, spec, index=Stored())  # builds the earlier tasks' table (once per task)
    first = time.perf_counter() - t0
    pairs = []
    for _ in range(repeats):
        t0 = time.perf_counter()  # the task's next bundle: the earlier tasks' table is kept
        check_novelty(images, spec, index=Stored())
        check = time.perf_counter() - t0
        clear_memo()
        t0 = time.perf_counter()
        score_images(spec, teachers, images, ev)
        pairs.append((check, time.perf_counter() - t0))
    ratios = sorted(c / s for c, s in pairs)
    return {"index_bundles": bundles, "index_images": bundles * per, "query_images": len(images),
            "first_check_seconds": round(first, 3), "check_seconds": [round(c, 3) for c, _ in pairs],
            "score_seconds": [round(s, 3) for _, s in pairs], "check_to_score": [round(x, 3) for x in ratios],
            "check_to_score_median": round(ratios[len(ratios) // 2], 3), "goal": "<= 0.15",
            "flagged_against_stand_ins": r.n - r.n_novel, "stages": r.stages}


def bench_novelty(n: int = 500, score: bool = True, con: Console | None = None, index_bundles: int = 1024) -> dict:
    con = con or Console(stderr=True, width=150)
    out: dict = {"n": n}
    with tempfile.TemporaryDirectory() as tmp:
        _, spec, teachers, _, (ev_x, ev_y) = digits_reference(tmp)
        args = (teachers, n, spec.num_classes, spec.shape, spec.mean, spec.std)
        recipes = {
            "pixel, seed 0": lambda: dream(*args, DreamConfig(seed=0)).images,
            "pixel, seed 1": lambda: dream(*args, DreamConfig(seed=1)).images,
            "pixel 60 steps, seed 2": lambda: dream(*args, DreamConfig(seed=2, steps=60)).images,
            "DeepInversion-100, seed 3": lambda: dream(*args, deepinversion_config(seed=3, steps=100,
                                                                                   image_size=8)).images,
            "generator, seed 4": lambda: synthesize(spec, teachers, n, "generator", seed=4).images,
        }
        honest = {}
        for name, make in recipes.items():
            con.print(f"dreaming {n} images: {name}")
            honest[name] = make()
        names = list(honest)

        # -- false positives: each honest bundle after all the others ----------------------
        fp_rows, seconds = [], []
        for i, name in enumerate(names):
            earlier = [reference("earlier_submission", o, honest[o]) for o in names if o != name]
            t0 = time.perf_counter()
            r = check_novelty(honest[name], spec, earlier, eval_images=ev_x)
            seconds.append(time.perf_counter() - t0)
            c = r.counts()
            fp_rows.append({"bundle": name, "of": r.n, "flagged_by_others": c["earlier_submission"] + c["eval_set"],
                            "self_twins": c["self"]})
        flagged = sum(x["flagged_by_others"] for x in fp_rows)
        total = sum(x["of"] for x in fp_rows)
        out["false_positives"] = {"rows": fp_rows, "flagged": flagged, "of": total,
                                  "rate": round(flagged / total, 4), "goal": "<= 0.01",
                                  "note": "flagged_by_others: honest images taken for near-twins of another honest "
                                          "bundle or of the eval set; self_twins: the bundle's own mode collapse "
                                          "(true near-duplicates, which honest miners drop before submitting)",
                                  "references_per_check": (len(names) - 1) * n + len(ev_x),
                                  "check_seconds_mean": round(sum(seconds) / len(seconds), 3)}

        # -- detection ----------------------------------------------------------------------
        src, other = honest[names[0]], honest[names[1]]
        src_ref = [reference("earlier_submission", "original", src)]
        det = []

        def detect(label: str, images: torch.Tensor, earlier=(), eval_images=None, want: float = 0.99):
            r = check_novelty(images, spec, list(earlier), eval_images=eval_images)
            det.append({"cheat": label, "flagged_fraction": round(1 - r.novel_fraction, 4), "want": want,
                        "reasons": {k: v for k, v in r.counts().items() if v}, "stages": {
                            "hash": r.stages["hash"], "exhaustive": r.stages["exhaustive"]}})

        for name, fn in cheats.TRANSFORMS.items():
            detect(f"transformed copy: {name}", fn(src, 7), src_ref)
        detect("re-optimised copy (3 steps)", cheats.reoptimise(src, teachers, spec.mean, spec.std, 3), src_ref)
        detect("union of two earlier bundles", torch.cat([src[: n // 2], other[n // 2:]]),
               [reference("earlier_submission", "a", src), reference("earlier_submission", "b", other)])
        fresh = honest[names[2]]
        detect("half copied, half fresh", torch.cat([cheats.shift(src[: n // 2], 1), fresh[n // 2:]]), src_ref,
               want=0.5)
        detect("eval images", ev_x[:n], eval_images=ev_x)
        detect("eval images + noise ±16", cheats.noise(ev_x[:n], 16), eval_images=ev_x)
        means = cheats.class_means(ev_x, ev_y, spec.num_classes)
        collapse = cheats.noise(means.repeat(n // spec.num_classes, 1, 1, 1), 32)
        detect("10 class means × n/10, ±32 noise (mode collapse)", collapse, want=0.5)
        out["detection"] = det

        # -- what cheats earn -------------------------------------------------------------------
        if score:
            ev_t = (ev_x, ev_y)
            con.print("scoring: the original, its sybil copies, eval images")

            def scored(images, earlier, eval_images=ev_x):
                r = check_novelty(images, spec, earlier, eval_images=eval_images)
                if r.n_novel == 0:
                    return 0, r
                gain = score_images(spec, teachers, images[r.novel], ev_t)["score_bps"]
                return novel_score(gain, r.n_novel, r.n, spec), r

            one, _ = scored(src, [])
            refs = [reference("earlier_submission", "original", src)]
            sybil_scores = []
            for k, name in enumerate(SYBIL):
                variant = cheats.TRANSFORMS[name](src, 11 + k)
                s, _ = scored(variant, refs)
                sybil_scores.append({"variant": name, "score_bps": s})
                refs.append(reference("earlier_submission", f"variant {name}", variant))
            ev_score, _ = scored(ev_x[:n], [])
            total_scores = one + sum(max(0, x["score_bps"]) for x in sybil_scores)
            con.print(f"index cost: {index_bundles} earlier bundles of 1,000 images")
            out["index_cost"] = _index_cost(honest, spec, teachers, ev_t, index_bundles)
            out["earnings"] = {"original_bps": one, "sybil_variants": sybil_scores,
                               "original_plus_variants_bps": total_scores,
                               "ratio_to_one_bundle": round(total_scores / one, 3) if one > 0 else None,
                               "goal": "<= 1.1", "eval_images_bps": ev_score}
    return out


def render(result: dict, con: Console | None = None) -> None:
    con = con or Console(stderr=True, width=150)
    fp = result["false_positives"]
    t = Table(title=f"Novelty: honest bundles flagged (n = {result['n']} each)")
    for c in ("bundle", "flagged as twins of other bundles / the eval set", "its own mode collapse"):
        t.add_column(c)
    for r in fp["rows"]:
        t.add_row(r["bundle"], f"{r['flagged_by_others']} / {r['of']}", f"{r['self_twins']} / {r['of']}")
    t.add_row("all", f"{fp['flagged']} / {fp['of']} = {fp['rate']:.2%} (goal ≤ 1 %)", "")
    con.print(t)
    t = Table(title="Novelty: cheats detected")
    for c in ("cheat", "flagged", "want ≥", "reasons", "hash / exhaustive"):
        t.add_column(c)
    for r in result["detection"]:
        t.add_row(r["cheat"], f"{r['flagged_fraction']:.1%}", f"{r['want']:.0%}", str(r["reasons"]),
                  f"{r['stages']['hash']} / {r['stages']['exhaustive']}")
    con.print(t)
    if "earnings" in result:
        e = result["earnings"]
        ic = result["index_cost"]
        con.print(f"index: {ic['index_bundles']} earlier bundles ({ic['index_images']:,} images), a "
                  f"{ic['query_images']}-image bundle: check {ic['check_seconds']} s (the task's first: "
                  f"{ic['first_check_seconds']} s) vs score {ic['score_seconds']} s = "
                  f"{ic['check_to_score_median']:.1%} median (goal ≤ 15 %)"
                  + (f"; against a fresh verifier process's score {ic['check_to_fresh_process_score']:.1%}"
                     if "check_to_fresh_process_score" in ic else ""))
        con.print(f"scores: original {e['original_bps']} bps; with {len(e['sybil_variants'])} sybil variants "
                  f"{e['original_plus_variants_bps']} bps in total ({e['ratio_to_one_bundle']}× one bundle, goal ≤ 1.1); "
                  f"eval images {e['eval_images_bps']} bps")
