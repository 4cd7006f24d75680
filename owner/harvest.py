"""Harvest: turn a settled task's accepted bundles into a student model the owner can use.

1. **fetch** every accepted bundle by CID (a local copy is used only if its CID matches;
   otherwise IPFS, verified) and read it with the bundle format's bounded checks;
2. **merge** them into one dataset (``dataset.safetensors``: ``images`` uint8 and ``source``,
   the provenance row of each image) with a provenance table (miner, CID, score, novelty,
   reward, images kept); an image already contributed by an earlier bundle is kept once;
3. **distil** the spec's student from the task's teachers with a full-length recipe
   (``harvest_recipe``): progress bar, checkpoints as safetensors, resumable after a kill
   (same inputs and threads ⇒ the same bits as an uninterrupted run);
4. **report**: ``student.safetensors`` (config in its metadata and ``student.safetensors.json``),
   a model card (``model_card.json`` + ``MODEL_CARD.md``: data sources, accuracy of the student
   vs each teacher vs the noise baseline vs a real-data student where the owner gives training
   data, cost paid) and ``preview.png``, a grid of dreams per class.

Every stage leaves its result in the output folder; running the same harvest again resumes
where it stopped. The accepted bundles come from a manifest (``load_manifest``) or from the
chain's settlement (``manifest_from_chain``): the same ``AcceptedBundle`` list.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from codream import content, yardstick
from codream.bundle import BundleError, read as read_bundle
from codream.chain import Chain
from codream.data import normalize
from codream.distill import (Distillation, accuracy, deterministic, ensemble_logits, load_checkpoint, noise_images,
                             save_checkpoint)
from codream.evalset import union_eval_sets
from codream.market import show_task
from codream.preview import write_grid
from codream.spec import Recipe, SpecError, TaskSpec, load as load_spec, parse_bytes
from codream.teachers import load_teachers
from codream.zoo import load_model, save_model
from ipfs import CID, IpfsError, InvalidCidError, cid_of_file

MANIFEST_SCHEMA = "codream.harvest-manifest/1"
CARD_SCHEMA = "codream.model-card/1"
DATASET_FORMAT = "codream.harvest-dataset/1"
HARVEST_EPOCHS = 60          # passes over the merged dreams (at least)
HARVEST_MIN_FACTOR = 10      # ... and at least 10× the scoring recipe's steps
HARVEST_MAX_STEPS = 50_000


class HarvestError(ValueError):
    """The harvest cannot go on; the message says what failed and what to do."""


@dataclass
class AcceptedBundle:
    """One accepted submission: what the chain's settlement says about it."""

    cid: str
    miner: str
    score_bps: int | None = None
    novelty: float | None = None
    index: int | None = None         # submission index in the task
    reward_wei: int | None = None
    file: str | None = None          # a local copy (used only if its CID matches)


@dataclass
class Manifest:
    spec: TaskSpec
    bundles: list[AcceptedBundle]
    task_id: int | None = None
    paid_wei: int | None = None      # what the owner(s) paid: bounty less refunds
    source: str = ""


def load_manifest(path: str | Path, ipfs=None) -> Manifest:
    """A harvest manifest (``codream.harvest-manifest/1``)::

        {"schema": "codream.harvest-manifest/1", "task_id": 1, "spec": "task/spec.json",
         "paid_wei": "1000000000000000000",
         "bundles": [{"cid": "bafk…", "miner": "0x…", "score_bps": 8700, "novelty": 0.95,
                      "index": 0, "reward_wei": "…", "file": "bundles/0.safetensors"}]}

    ``spec`` is a path (relative to the manifest) or ``spec_cid`` a CID fetched from IPFS;
    ``file`` entries are optional local copies, relative to the manifest."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise HarvestError(f"{path}: no such manifest") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HarvestError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("schema") != MANIFEST_SCHEMA:
        raise HarvestError(f"{path}: schema must be {MANIFEST_SCHEMA!r}")
    try:
        if "spec" in raw:
            spec = load_spec(path.parent / raw["spec"])
        elif "spec_cid" in raw:
            spec = parse_bytes(content.fetch(raw["spec_cid"], client=ipfs, max_bytes=1 << 20).read_bytes())
        else:
            raise HarvestError(f"{path}: give the task spec as 'spec' (a path) or 'spec_cid'")
    except SpecError as exc:
        raise HarvestError(f"{path}: task spec: {exc}") from None
    except IpfsError as exc:
        raise HarvestError(f"{path}: cannot fetch the spec: {exc}") from None
    rows = raw.get("bundles")
    if not isinstance(rows, list) or not rows:
        raise HarvestError(f"{path}: 'bundles' must list the accepted bundles (at least one)")
    bundles = []
    for i, b in enumerate(rows):
        if not isinstance(b, dict) or "cid" not in b or "miner" not in b:
            raise HarvestError(f"{path}: bundles[{i}] needs at least 'cid' and 'miner'")
        try:
            cid = str(CID.parse(b["cid"]))
        except InvalidCidError as exc:
            raise HarvestError(f"{path}: bundles[{i}].cid: {exc}") from None
        file = str(path.parent / b["file"]) if b.get("file") else None
        bundles.append(AcceptedBundle(cid, str(b["miner"]), _opt(b, "score_bps", int), _opt(b, "novelty", float),
                                      _opt(b, "index", int), _opt(b, "reward_wei", int), file))
    if len({b.cid for b in bundles}) != len(bundles):
        raise HarvestError(f"{path}: a CID is listed twice")
    return Manifest(spec, bundles, _opt(raw, "task_id", int), _opt(raw, "paid_wei", int), str(path))


def accepted_from_task_view(view: dict) -> list[AcceptedBundle]:
    """The accepted submissions of a settled task, from the market read model
    (``codream.market.show_task``: submissions with index, miner, CID, status, result (the
    median in bps) and reward), in submission order. Novelty is not on chain (None)."""
    if view.get("phase") != "finalized":
        raise HarvestError(f"task {view.get('task_id')}: phase is {view.get('phase')!r}; harvest once it is "
                           "finalized (`codream task show ID`)")
    out = [AcceptedBundle(s["cid"], s["miner"], s.get("result"), None, s["index"], s.get("reward"))
           for s in view.get("submissions", []) if s.get("status") == "accepted" and s.get("cid")]
    if not out:
        raise HarvestError(f"task {view.get('task_id')}: no accepted submission to harvest")
    return out


def manifest_from_chain(chain: Chain, task_id: int, ipfs=None, spec: TaskSpec | None = None) -> Manifest:
    """The harvest manifest of a finalized task, read from the chain: its accepted bundles
    (``accepted_from_task_view``), its spec (``spec``, else fetched by the CID on chain,
    verified) and what its owners paid (the bounty less the owners' refund at settlement)."""
    view = show_task(chain, task_id)
    bundles = accepted_from_task_view(view)
    if spec is None:
        try:
            spec = parse_bytes(content.fetch(view["spec_cid"], client=ipfs, max_bytes=1 << 20).read_bytes())
        except IpfsError as exc:
            raise HarvestError(f"task {task_id}: cannot fetch its spec {view['spec_cid']}: {exc}") from None
        except SpecError as exc:
            raise HarvestError(f"task {task_id}: its spec {view['spec_cid']}: {exc}") from None
    refund = sum(e["ownersRefund"] for e in chain.events("Finalized", task_id))
    return Manifest(spec, bundles, task_id, view["bounty_wei"] - refund, f"chain task {task_id}")


def _opt(d: dict, key: str, cast):
    v = d.get(key)
    if v is None:
        return None
    try:
        return cast(v)
    except (TypeError, ValueError):
        raise HarvestError(f"manifest field {key}: expected {cast.__name__}, got {v!r}") from None


def harvest_recipe(spec: TaskSpec, n_images: int, steps: int | None = None) -> Recipe:
    """The scoring recipe made full length: at least ``HARVEST_EPOCHS`` passes over the
    merged dreams and ``HARVEST_MIN_FACTOR``× the scoring steps (a score is a short, cheap
    probe; the owner's student gets the long run). Same lr, temperature, augmentations, seed."""
    r = spec.recipe
    if steps is None:
        epochs = HARVEST_EPOCHS * math.ceil(n_images / r.batch)
        steps = min(HARVEST_MAX_STEPS, max(HARVEST_MIN_FACTOR * r.steps, epochs))
    return Recipe(steps, r.batch, r.lr, r.temperature, r.seed, r.augment)


# -- stage 1 and 2: fetch and merge ------------------------------------------------------------

def fetch_bundle(b: AcceptedBundle, spec: TaskSpec, ipfs=None) -> torch.Tensor:
    """The bundle's images; the content must hash to its CID whatever its source."""
    if b.file is not None and Path(b.file).is_file():
        got = cid_of_file(b.file)
        if got != b.cid:
            raise HarvestError(f"{b.file}: its CID is {got}, but the accepted submission of {b.miner} is {b.cid}: "
                               "that is not the bundle that was paid for; remove the file to fetch it from IPFS")
    try:
        path = content.fetch(b.cid, hint=b.file, client=ipfs, max_bytes=spec.bundle.max_bytes)
    except IpfsError as exc:
        raise HarvestError(f"bundle {b.cid} (miner {b.miner}): cannot fetch it from IPFS ({exc}); "
                           "is the node up and the bundle still pinned?") from None
    try:
        images, _ = read_bundle(path.read_bytes())
    except BundleError as exc:
        raise HarvestError(f"bundle {b.cid} (miner {b.miner}): {exc}") from None
    if tuple(images.shape[1:]) != spec.shape:
        raise HarvestError(f"bundle {b.cid}: images {tuple(images.shape[1:])}, the task's input is {spec.shape}")
    return images


def merge(parts: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """One dataset from bundles in order; an image already given by an earlier bundle is
    kept once (the earliest keeps it). Returns images, the source row of each, and per
    bundle the images given, kept and their range in the dataset."""
    seen: set[bytes] = set()
    images, sources, stats, pos = [], [], [], 0
    for i, x in enumerate(parts):
        flat = x.reshape(len(x), -1).numpy()
        keep = []
        for r in range(len(x)):
            key = hashlib.blake2b(flat[r].tobytes(), digest_size=16).digest()
            keep.append(key not in seen)
            seen.add(key)
        kept = x[torch.tensor(keep, dtype=torch.bool)]
        images.append(kept)
        sources.append(torch.full((len(kept),), i, dtype=torch.int32))
        stats.append({"images": len(x), "kept": len(kept), "duplicates_dropped": len(x) - len(kept),
                      "rows": [pos, pos + len(kept)]})
        pos += len(kept)
    return torch.cat(images), torch.cat(sources), stats


def _run_key(spec: TaskSpec, bundles: list[AcceptedBundle], recipe: Recipe) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(spec.raw, sort_keys=True).encode())
    h.update(json.dumps([b.cid for b in bundles]).encode())
    h.update(json.dumps(asdict(recipe), sort_keys=True).encode())
    return h.hexdigest()[:32]


def _dataset(out: Path, spec: TaskSpec, bundles: list[AcceptedBundle], ipfs, say) -> tuple[torch.Tensor, list[dict]]:
    """Stage 1+2, or their result from an earlier run of the same harvest."""
    path, prov_path = out / "dataset.safetensors", out / "provenance.json"
    key = hashlib.sha256(json.dumps([b.cid for b in bundles]).encode()).hexdigest()[:32]
    if path.exists() and prov_path.exists():
        try:
            with safe_open(str(path), "pt") as fh:
                meta = fh.metadata() or {}
            if meta.get("format") == DATASET_FORMAT and meta.get("bundles_key") == key:
                say(f"dataset: reusing {path}")
                return load_file(str(path))["images"], json.loads(prov_path.read_text())
        except (SafetensorError, OSError, json.JSONDecodeError):
            pass
        raise HarvestError(f"{out}: holds the harvest of other bundles; choose another --out or empty it")
    parts = []
    for b in tqdm(bundles, desc="fetching bundles", unit="bundle", disable=not say.progress):
        parts.append(fetch_bundle(b, spec, ipfs))
    images, sources, stats = merge(parts)
    prov = [{**{k: v for k, v in asdict(b).items() if k != "file"}, **s} for b, s in zip(bundles, stats)]
    tmp = path.with_name(f".{path.name}.part")
    save_file({"images": images.contiguous(), "source": sources}, str(tmp),
              metadata={"format": DATASET_FORMAT, "bundles_key": key})
    prov_path.write_text(json.dumps(prov, indent=2))
    tmp.replace(path)  # last: its presence means both files are complete
    say(f"dataset: {len(images)} images from {len(bundles)} bundles "
        f"({sum(s['duplicates_dropped'] for s in stats)} repeats dropped)")
    return images, prov


# -- stage 3: the resumable distillation ------------------------------------------------------

def distil_resumable(spec: TaskSpec, teachers: list[nn.Module], images: torch.Tensor, recipe: Recipe,
                     checkpoint: Path, key: str, every: int, threads: int | None = None, progress: bool = True,
                     desc: str = "distilling") -> nn.Module:
    """``Distillation`` to the end with a checkpoint every ``every`` steps; picks up from
    ``checkpoint`` if it holds this run (``key``)."""
    with deterministic(threads):
        run = Distillation(spec.student, teachers, images, recipe, spec.mean, spec.std)
        resumed = load_checkpoint(run, checkpoint, key)
        bar = tqdm(total=recipe.steps, initial=run.step, desc=desc + (" (resumed)" if resumed else ""),
                   unit="step", disable=not progress)
        while not run.done:
            run.run_step()
            bar.update(1)
            if run.step % every == 0 and not run.done:
                save_checkpoint(run, checkpoint, key)
        bar.close()
        return run.result()


# -- stage 4: evaluation, card, preview ------------------------------------------------------

class _Ensemble(nn.Module):
    def __init__(self, teachers):
        super().__init__()
        self.teachers = teachers

    def forward(self, x):
        return ensemble_logits(self.teachers, x)


def preview_per_class(images: torch.Tensor, teachers, spec: TaskSpec, path: Path, per_class: int = 10) -> Path:
    """A grid with one row per class (the teachers' ensemble label), ``per_class`` dreams each;
    a class with fewer dreams gets blank tiles."""
    with torch.no_grad():
        labels = torch.cat([ensemble_logits(teachers, normalize(images[i:i + 1024], spec.mean, spec.std)).argmax(1)
                            for i in range(0, len(images), 1024)])
    tiles, caps = [], []
    blank = torch.full(images.shape[1:], 255, dtype=torch.uint8)
    for c in range(spec.num_classes):
        idx = torch.nonzero(labels == c).flatten()[:per_class]
        tiles += [images[i] for i in idx] + [blank] * (per_class - len(idx))
        caps += [c] * per_class
    return write_grid(torch.stack(tiles), torch.tensor(caps), path, cols=per_class, max_images=len(tiles))


def _state(out: Path) -> dict:
    p = out / "harvest-state.json"
    return json.loads(p.read_text()) if p.exists() else {}


def _save_state(out: Path, st: dict) -> None:
    tmp = out / ".harvest-state.json.part"
    tmp.write_text(json.dumps(st, indent=2))
    tmp.replace(out / "harvest-state.json")


class _Say:
    def __init__(self, progress: bool, log):
        self.progress, self.log = progress, log

    def __call__(self, msg: str) -> None:
        if self.log:
            self.log(msg)


def harvest(spec: TaskSpec, bundles: list[AcceptedBundle], out: str | Path, *,
            evals: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
            train: tuple[torch.Tensor, torch.Tensor] | None = None, steps: int | None = None,
            task_id: int | None = None, paid_wei: int | None = None, ipfs=None, threads: int | None = None,
            checkpoint_every: int | None = None, baselines: bool = True, progress: bool = True,
            log=None, teachers: list[nn.Module] | None = None, teacher_names: list[str] | None = None) -> dict:
    """Fetch, merge, distil (resumable) and report; returns the model card (also written).

    ``evals``: eval sets by name (each owner's; with several, their union is reported too).
    ``train``: the owner's own training images and labels, for the real-data student.
    ``steps``: override the full-length recipe's step count (``harvest_recipe``).
    ``teacher_names``: how the card names the spec's teachers (default ``teacher 0``…)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = _Say(progress, log)
    t0 = time.perf_counter()
    images, prov = _dataset(out, spec, bundles, ipfs, say)
    recipe = harvest_recipe(spec, len(images), steps)
    key = _run_key(spec, bundles, recipe)
    st = _state(out)
    if st.get("key") not in (None, key):
        raise HarvestError(f"{out}: holds a harvest with another recipe or spec; choose another --out or empty it")
    st["key"] = key
    if teachers is None:
        teachers = load_teachers(spec, client=ipfs)
    student_path = out / "student.safetensors"
    if not (st.get("student_done") and student_path.exists()):
        every = checkpoint_every or max(25, recipe.steps // 40)
        student = distil_resumable(spec, teachers, images, recipe, out / "checkpoint.safetensors", key, every,
                                   threads, progress)
        save_model(student, spec.student, student_path)
        st["student_done"] = True
        _save_state(out, st)
        (out / "checkpoint.safetensors").unlink(missing_ok=True)
    student, _ = load_model(student_path)
    say(f"student: {student_path}")

    # evaluation (each result kept in the state, so a kill here loses one number at most)
    sets = dict(evals or {})
    if len(sets) > 1:
        sets["union"] = union_eval_sets(list(sets.values()))
    res = st.setdefault("accuracy", {})

    def acc_of(name: str, model: nn.Module):
        for e, (x, y) in sets.items():
            res.setdefault(name, {})[e] = round(accuracy(model, x, y, spec.mean, spec.std), 4)

    if sets:
        acc_of("student", student)
        names = teacher_names if teacher_names and len(teacher_names) == len(teachers) else \
            [str(i) for i in range(len(teachers))]
        for n, t in zip(names, teachers):
            acc_of(f"teacher {n}", t)
        if len(teachers) > 1:
            acc_of("teachers' ensemble", _Ensemble(teachers))
        extra = [("noise baseline", noise_images(spec.baseline.n, spec.shape, spec.baseline.seed))] \
            if baselines else []
        if baselines and train is not None:
            extra.append(("real-data student", train[0]))
        for name, imgs in extra:  # the yardstick, with the harvest's full-length recipe
            if name in res:
                continue
            bar = tqdm(total=recipe.steps, desc=name, unit="step", disable=not progress)
            model = yardstick.students(spec, teachers, imgs, threads=threads, recipe=recipe,
                                       progress=lambda _: bar.update(1))[0]
            bar.close()
            acc_of(name, model)
            _save_state(out, st)
    _save_state(out, st)
    preview_per_class(images, teachers, spec, out / "preview.png")
    card = model_card(spec, prov, recipe, res, len(images), task_id, paid_wei, train is not None,
                      round(time.perf_counter() - t0, 1))
    (out / "model_card.json").write_text(json.dumps(card, indent=2))
    (out / "MODEL_CARD.md").write_text(card_markdown(card))
    say(f"model card: {out / 'MODEL_CARD.md'}")
    return card


def model_card(spec: TaskSpec, prov: list[dict], recipe: Recipe, acc: dict, n_images: int, task_id, paid_wei,
               has_train: bool, seconds: float) -> dict:
    paid = paid_wei if paid_wei is not None else (sum(p["reward_wei"] for p in prov if p.get("reward_wei"))
                                                  or None)
    return {
        "schema": CARD_SCHEMA,
        "task": {"id": task_id, "name": spec.name, "num_classes": spec.num_classes, "input_shape": list(spec.shape),
                 "normalisation": {"mean": list(spec.mean), "std": list(spec.std)}},
        "student": {"model": spec.student, "weights": "student.safetensors", "config": "student.safetensors.json"},
        "teachers": [{"model": t["model"], "weights_cid": t["weights_cid"]} for t in spec.teachers],
        "training": {"dataset": "dataset.safetensors", "images": n_images, "bundles": len(prov),
                     "recipe": asdict(recipe), "labels": "soft labels of the teachers' ensemble (mean logits)"},
        "data_sources": prov,
        "accuracy": acc,
        "baselines": {"noise": "the same recipe on the task's seeded noise images",
                      "real_data": ("the same recipe on the owner's own training images" if has_train
                                    else "not run: no training data given")},
        "cost": {"paid_wei": paid, "paid_eth": paid / 1e18 if paid else None,
                 "wei_per_image": paid // n_images if paid and n_images else None},
        "seconds": seconds,
    }


def card_markdown(card: dict) -> str:
    t = card["task"]
    lines = [f"# Model card: student of task {t['id'] if t['id'] is not None else '(offline)'} ({t['name']})", "",
             f"A `{card['student']['model']['arch']}` student distilled from {len(card['teachers'])} teacher(s) on "
             f"{card['training']['images']} dreams from {card['training']['bundles']} accepted bundle(s). "
             f"Input {'×'.join(map(str, t['input_shape']))}, {t['num_classes']} classes, normalisation "
             f"mean {t['normalisation']['mean']} std {t['normalisation']['std']}.", "",
             "Files: `student.safetensors` (config in its metadata and `student.safetensors.json`), "
             "`dataset.safetensors` (the merged dreams, `source` = provenance row), `provenance.json`, "
             "`preview.png` (dreams per class).", ""]
    acc = card["accuracy"]
    if acc:
        evals = list(next(iter(acc.values())).keys())
        lines += ["## Accuracy", "", "| model | " + " | ".join(evals) + " |",
                  "|---|" + "---:|" * len(evals)]
        for name, row in acc.items():
            lines.append(f"| {name} | " + " | ".join(f"{100 * row[e]:.1f} %" if e in row else "—"
                                                     for e in evals) + " |")
        lines += ["", f"Noise baseline: {card['baselines']['noise']}. Real-data student: "
                      f"{card['baselines']['real_data']}.", ""]
    else:
        lines += ["## Accuracy", "", "Not measured: no eval set given.", ""]
    lines += ["## Data sources", "", "| # | miner | CID | score (bps) | novelty | images kept |",
              "|---:|---|---|---:|---:|---:|"]
    for i, p in enumerate(card["data_sources"]):
        nov = "—" if p.get("novelty") is None else f"{p['novelty']:.3f}"
        lines.append(f"| {p['index'] if p.get('index') is not None else i} | `{p['miner']}` | `{p['cid']}` | "
                     f"{p.get('score_bps', '—')} | {nov} | {p['kept']} / {p['images']} |")
    c, r = card["cost"], card["training"]["recipe"]
    lines += ["", "## Cost", "",
              (f"Paid {c['paid_eth']:.6g} ETH ({c['wei_per_image']} wei per image kept)." if c["paid_wei"]
               else "Cost not known (no paid amount in the manifest)."), "",
              "## Recipe", "",
              f"{r['steps']} Adam steps × {r['batch']} images, lr {r['lr']}, temperature {r['temperature']}, "
              f"seed {r['seed']}, augment {list(r['augment'])}; {card['training']['labels']}.", ""]
    return "\n".join(lines)
