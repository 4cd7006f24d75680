"""Synthesis receipts: a bundle says how it was dreamed, and its verifiers dream part of it again.

No statistic on pixels tells a disguised copy from fresh work once the disguise is strong
enough: on 8×8 digits an elastic warp of an earlier bundle scores like honest dreams and looks
like them to every test measured (docs/verification.md, "Receipts"). What a copy cannot do is
*come out of the recipe*. The pixel method's dreams are a deterministic function of the task's
teachers, the synthesis settings and a seed, one shard (batch) at a time
(``codream.synthesis.dream_shard``). So a bundle carries a **receipt** in its metadata:

- ``config``: every ``DreamConfig`` field but the seed (the losses, steps, lr, batch...);
- ``runs``: the syntheses it came from (the first pass and the miner's top-up rounds), each a
  seed, a count ``n`` and the indices it ``dropped`` (near-twins the miner left out). The
  bundle's images are the runs' kept images, run after run, in index order.

A verifier picks ``shards`` shards of the bundle, each with probability proportional to the kept
images in it, from the committee's recipe seed (unknown when the miner commits, so the miner
cannot know which of its shards will be replayed), dreams them again and compares: every kept
image of a replayed shard must match its replay (centred cosine ≥ ``min_cosine``; on this machine
a replay is the same bytes, even at another thread count). A bundle that does not match is
INVALID and loses its bond, **with the honest shards in it**: a miner that copies a fraction f of
its shards and dreams the rest is caught with probability ≥ f per replayed shard, and then loses
everything, so copying a shard loses money in expectation whatever f is (the module's tests and
docs/verification.md work the numbers).

What it costs: one shard's synthesis per replay (``batch`` images × ``steps``), bounded by the
spec's ``max_batch`` × ``max_steps``. What it asks of miners: the pixel method in fp32 (no
autocast) and no terms that depend on state outside the shard (the adaptive student, a
repulsion bank): the generator method carries state from batch to batch and cannot be replayed
in part, so a task that requires receipts cannot be mined with it.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from .bundle import Binding
from .spec import TaskSpec, receipt_config, validate
from .synthesis import DreamConfig, DreamTask, dream_shard, prepare_teachers

KEY = "receipt"  # the bundle metadata key
VERSION = 1
MAX_RUNS = 16
# DreamConfig fields a receipt carries (all but the seed, which is per run), and the ones a replay
# cannot reproduce: they must be off
FIELDS = tuple(f.name for f in dataclasses.fields(DreamConfig) if f.name != "seed")
# what a replay accepts of each float setting (others: [0, 1e6]); outside them torch raises or overflows
FLOAT_BOUNDS = {"lr": (0.0, 10.0), "label_smoothing": (0.0, 0.99), "mix": (0.0, 1.0), "init_std": (0.0, 10.0)}
MUST_BE_OFF = {"amp": "bf16 autocast (a replay runs in fp32)",
               "adaptive": "the adaptive term (its student learns from earlier shards)",
               "repel": "the repulsion (its bank holds earlier shards' dreams)"}


class ReceiptError(ValueError):
    """A receipt is missing, malformed or does not fit the task. ``code`` is machine-readable."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


@dataclass(frozen=True)
class Run:
    """One synthesis: ``n`` dreams of seed ``seed``, of which ``dropped`` were left out."""

    seed: int
    n: int
    dropped: tuple[int, ...] = ()


@dataclass(frozen=True)
class Receipt:
    """How a bundle was dreamed: the synthesis settings (every ``DreamConfig`` field but the seed)
    and its runs; the bundle's images are the runs' kept images, run after run, in index order."""

    config: dict
    runs: tuple[Run, ...]

    def to_json(self) -> str:
        return json.dumps({"v": VERSION, "method": "pixel", "config": self.config,
                           "runs": [{"seed": r.seed, "n": r.n, "dropped": list(r.dropped)} for r in self.runs]},
                          sort_keys=True, separators=(",", ":"))

    def dream_config(self, run: int, binding: Binding | None = None) -> DreamConfig:
        """What run ``run`` was dreamed with (``bound_config``)."""
        return bound_config(DreamConfig(**self.config, seed=self.runs[run].seed), binding)

    def origins(self) -> list[tuple[int, int]]:
        """(run, index in its run) of each bundle image, in bundle order."""
        out = []
        for j, r in enumerate(self.runs):
            gone = set(r.dropped)
            out += [(j, i) for i in range(r.n) if i not in gone]
        return out

    @property
    def batch(self) -> int:
        return int(self.config["batch"])

    def shard_of(self, origin: tuple[int, int]) -> tuple[int, int]:
        """The (run, shard) that dreamed the image of ``origin`` (run, index)."""
        return origin[0], origin[1] // self.batch

    def shard_weights(self) -> dict[tuple[int, int], int]:
        """Kept images per (run, shard): what the replayed shard is drawn by."""
        weights: dict[tuple[int, int], int] = {}
        for o in self.origins():
            weights[self.shard_of(o)] = weights.get(self.shard_of(o), 0) + 1
        return weights


def bound_seed(binding: Binding, nonce: int) -> int:
    """The seed a run named ``nonce`` is dreamed with on a task that binds receipts
    (``scoring.receipt.bound``): a hash of the submission's binding (chain, market, task, miner)
    and the nonce, all 256 bits (a shard's starting noise is drawn from all of them:
    ``synthesis.keyed_normal``). A copy of a bundle re-bound to another miner or task names seeds that
    dream other images: it does not replay, however faithful the copy (and whether or not the
    novelty index holds the bundle it copied)."""
    tag = (f"codream-receipt-run|{binding.chain_id}|{binding.contract.lower()}|{binding.task_id}|"
           f"{binding.miner.lower()}|{nonce}")
    return int.from_bytes(hashlib.sha256(tag.encode()).digest(), "big")


def bound_config(cfg: DreamConfig, binding: Binding | None) -> DreamConfig:
    """The settings a run whose receipt names ``cfg`` is dreamed with: ``cfg`` itself, or bound to
    ``binding`` (``seed_binding``) its seed replaced by ``bound_seed(binding, cfg.seed)``."""
    return cfg if binding is None else dataclasses.replace(cfg, seed=bound_seed(binding, cfg.seed))


def seed_binding(spec: TaskSpec, binding: Binding | None) -> Binding | None:
    """What a task's receipt seeds are bound to: ``binding`` where the spec requires bound
    receipts, else None. Raises ValueError where it does and no binding is given."""
    cfg = receipt_config(spec)
    if not (cfg["required"] and cfg["bound"]):
        return None
    if binding is None:
        raise ValueError("this task binds each synthesis receipt to its submission (scoring.receipt.bound): "
                         "dream with the binding (chain id, market, task id, miner) the bundle will carry")
    return binding


def requiring(spec: TaskSpec, required: bool = True, **settings) -> TaskSpec:
    """A copy of ``spec`` that does (or does not) require receipts, with other receipt ``settings``."""
    raw = copy.deepcopy(spec.raw)
    raw["scoring"]["receipt"] = {**raw["scoring"].get("receipt", {}), "required": required, **settings}
    out = validate(raw)
    out.path = spec.path  # the teachers' file hints resolve beside the original spec
    return out


def of_config(cfg: DreamConfig, n: int) -> Receipt:
    """The receipt of one fresh synthesis of ``n`` dreams with ``cfg`` (nothing dropped yet)."""
    d = dataclasses.asdict(cfg)
    return Receipt({k: d[k] for k in FIELDS}, (Run(int(cfg.seed), int(n)),))


def kept(parts: Sequence[Receipt], origins: Sequence[tuple[int, int]]) -> Receipt:
    """The receipt of a bundle made of the runs of ``parts`` (one run each, same config), of which
    the images ``origins`` ((part, index) in bundle order) were kept. Raises ValueError when the
    kept images are not in run-then-index order (a bundle that a receipt cannot describe)."""
    if not parts:
        raise ValueError("no runs")
    if any(p.config != parts[0].config or len(p.runs) != 1 for p in parts):
        raise ValueError("a receipt's runs share one config, one run per part")
    if list(origins) != sorted(origins):
        raise ValueError("kept images must stay in run order, then index order")
    runs = []
    for j, p in enumerate(parts):
        have = {i for (k, i) in origins if k == j}
        runs.append(Run(p.runs[0].seed, p.runs[0].n, tuple(i for i in range(p.runs[0].n) if i not in have)))
    return Receipt(dict(parts[0].config), tuple(runs))


def subset(receipt: Receipt, positions: Sequence[int]) -> Receipt:
    """The receipt of the bundle made of the images at ``positions`` (increasing) of ``receipt``'s
    bundle: the same runs, with every other image dropped (a benchmark splits one bundle into
    several submissions this way)."""
    origins = receipt.origins()
    keep = {origins[p] for p in positions}
    if list(positions) != sorted(set(positions)):
        raise ValueError("positions must be increasing")
    return Receipt(dict(receipt.config), tuple(
        Run(r.seed, r.n, tuple(i for i in range(r.n) if (j, i) not in keep)) for j, r in enumerate(receipt.runs)))


def _int(v, what: str, lo: int, hi: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ReceiptError("bad_receipt", f"{what} must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def parse(text: str | None, spec: TaskSpec, n_images: int) -> Receipt:
    """The receipt in a bundle's metadata, checked against the task (bounds from
    ``scoring.receipt``) and the bundle's image count. Raises ReceiptError (``no_receipt``,
    ``bad_receipt``) saying what is wrong."""
    if text is None:
        raise ReceiptError("no_receipt", "the task requires a synthesis receipt (bundle metadata "
                           f"{KEY!r}): dream with `codream miner dream` (pixel method, no --amp)")
    cfg = receipt_config(spec)
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ReceiptError("bad_receipt", f"not JSON: {exc}") from None
    if not isinstance(raw, dict) or set(raw) != {"v", "method", "config", "runs"}:
        raise ReceiptError("bad_receipt", "an object with exactly v, method, config and runs")
    if raw["v"] != VERSION or raw["method"] != "pixel":
        raise ReceiptError("bad_receipt", f"version {raw['v']!r} / method {raw['method']!r}: "
                           f"this verifier replays version {VERSION} of the pixel method only")
    conf = raw["config"]
    if not isinstance(conf, dict):
        raise ReceiptError("bad_receipt", f"config must be an object of the synthesis fields {sorted(FIELDS)}")
    if set(conf) != set(FIELDS):
        missing, extra = sorted(set(FIELDS) - set(conf)), sorted(set(conf) - set(FIELDS))
        raise ReceiptError("bad_receipt", f"config must have the synthesis fields {sorted(FIELDS)} "
                           f"(missing {missing}, unknown {extra})")
    defaults = DreamConfig()
    for k in FIELDS:
        want, v = type(getattr(defaults, k)), conf[k]
        if want is bool:
            ok = isinstance(v, bool)
        elif want is int:
            ok = isinstance(v, int) and not isinstance(v, bool)
        else:  # compared before any conversion: a 400-digit integer must not overflow a float
            lo, hi = FLOAT_BOUNDS.get(k, (0.0, 1e6))
            ok = (isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi
                  and math.isfinite(float(v)))
        if not ok:
            bounds = "" if want is not float else " in [%g, %g]" % FLOAT_BOUNDS.get(k, (0.0, 1e6))
            raise ReceiptError("bad_receipt", f"config.{k} must be a finite {want.__name__}{bounds}, got {v!r}"[:300])
    for k, what in MUST_BE_OFF.items():
        if conf[k]:
            raise ReceiptError("bad_receipt", f"config.{k}: {what} cannot be replayed; dream without it")
    _int(conf["steps"], "config.steps", 1, int(cfg["max_steps"]))
    _int(conf["batch"], "config.batch", 1, int(cfg["max_batch"]))
    _int(conf["jitter"], "config.jitter", 0, 8)
    _int(conf["init_cells"], "config.init_cells", 0, 64)
    if not isinstance(raw["runs"], list) or not 1 <= len(raw["runs"]) <= MAX_RUNS:
        raise ReceiptError("bad_receipt", f"runs: a list of 1..{MAX_RUNS} syntheses")
    runs = []
    for j, r in enumerate(raw["runs"]):
        if not isinstance(r, dict) or set(r) != {"seed", "n", "dropped"}:
            raise ReceiptError("bad_receipt", f"runs[{j}]: an object with exactly seed, n and dropped")
        seed = _int(r["seed"], f"runs[{j}].seed", 0, 2**63 - 1)
        n = _int(r["n"], f"runs[{j}].n", 1, spec.bundle.max_images)
        d = r["dropped"]
        if not isinstance(d, list) or any(not isinstance(i, int) or isinstance(i, bool) for i in d) \
                or d != sorted(set(d)) or (d and not 0 <= d[0] <= d[-1] < n):
            raise ReceiptError("bad_receipt", f"runs[{j}].dropped: increasing indices in [0, {n})")
        runs.append(Run(seed, n, tuple(d)))
    rec = Receipt({k: conf[k] for k in FIELDS}, tuple(runs))
    kept_n = sum(r.n - len(r.dropped) for r in runs)
    if kept_n != n_images:
        raise ReceiptError("bad_receipt", f"the receipt's runs keep {kept_n} images, the bundle has {n_images}")
    return rec


def chosen_shards(receipt: Receipt, seed: int, count: int) -> list[tuple[int, int]]:
    """``count`` distinct (run, shard) pairs to replay, each drawn with probability proportional
    to its kept images (so a copied image is caught with probability ≥ its share per draw), from
    ``seed`` (the committee's recipe seed) alone: every seat replays the same shards."""
    weights = receipt.shard_weights()
    units, out = sorted(weights), []
    for k in range(min(count, len(units))):  # draws without replacement, each over what is left
        h = hashlib.sha256(f"codream-receipt|{seed}|{k}".encode()).digest()
        u = int.from_bytes(h[:8], "big") % sum(weights[x] for x in units)
        for x in units:
            u -= weights[x]
            if u < 0:
                out.append(x)
                units.remove(x)
                break
    return out


def centred_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image centred cosine of two uint8 batches (1 for two constant images that are equal)."""
    x, y = a.float().flatten(1), b.float().flatten(1)
    x, y = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
    den = x.norm(dim=1) * y.norm(dim=1)
    cos = (x * y).sum(1) / den.clamp_min(1e-12)
    return torch.where(den > 0, cos, (a.flatten(1) == b.flatten(1)).all(1).float())


def replay(receipt: Receipt, images: torch.Tensor, spec: TaskSpec, teachers: Sequence[nn.Module], seed: int,
           device: str | torch.device = "cpu", binding: Binding | None = None) -> dict:
    """Dream the chosen shards again (their seeds bound to ``binding``: ``seed_binding``) and
    compare them with the bundle's images. The report:
    ``ok``, the shards replayed, images compared, the worst centred cosine, the share of
    byte-identical images, seconds."""
    cfg = receipt_config(spec)
    t0 = time.perf_counter()
    where = {o: k for k, o in enumerate(receipt.origins())}
    shards = chosen_shards(receipt, seed, int(cfg["shards"]))
    prepared = prepare_teachers(teachers, torch.device(device))
    worst, compared, same = 1.0, 0, 0
    for j, s in shards:
        run = receipt.runs[j]
        task = DreamTask(teachers, run.n, spec.num_classes, tuple(spec.shape), spec.mean, spec.std,
                         receipt.dream_config(j, binding))
        lo, hi = task.span(s)
        got = dream_shard(task, s, device, prepared).images
        idx = [(i, where[(j, i)]) for i in range(lo, hi) if (j, i) in where]
        mine = got[[i - lo for i, _ in idx]]
        theirs = images[[k for _, k in idx]]
        cos = centred_cosine(mine, theirs)
        worst = min(worst, float(cos.min()))
        compared += len(idx)
        same += int((mine.flatten(1) == theirs.flatten(1)).all(1).sum())
    return {"ok": worst >= float(cfg["min_cosine"]), "shards": [list(x) for x in shards], "images": compared,
            "worst_cosine": round(worst, 6), "identical": round(same / compared, 4) if compared else 1.0,
            "min_cosine": float(cfg["min_cosine"]), "seconds": round(time.perf_counter() - t0, 3)}
