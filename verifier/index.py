"""The persistent novelty index: accepted bundles of earlier tasks, keyed by teacher.

A dream bundle accepted in one task is worth nothing when it is re-bound to a later task
that uses the same teacher (a replay). The verifying agent adds every accepted bundle of a
finalised task here (from chain events and IPFS) and passes the index to
:func:`codream.novelty.check_novelty`, which compares a new bundle with every stored bundle
whose teacher (weights CID) the new task shares.

Layout under ``$CODREAM_HOME/novelty-index/`` (or any root)::

    <teacher weights CID>/manifest.json             format, bundles in insertion order
    <teacher weights CID>/<bundle key>.safetensors  grids uint8 [N, 8, 8], codes int64 [N, V],
                                                    work uint8 [N, 1, g, g] (the derived-work check's grid)

Each bundle is ~110 bytes per image (+ g² for the derived-work grid: 196 at 28×28) (a 1,000-image bundle: 110 kB; 1,024 of them: 113 MB),
written atomically (temporary file, then rename; the manifest last), loaded without pickle
(safetensors and JSON, shapes and dtypes checked). ``max_images`` bounds each teacher's
store: past it the oldest bundles are dropped (replays of them are then no longer caught:
size it to the history worth protecting).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from codream import config
from ipfs.cid import CID, InvalidCidError

from codream.derived import reference_grid
from codream.novelty import GRID, VARIANTS, Reference, entry_codes, grid

FORMAT = "codream.novelty-index/1"


class NoveltyIndexError(RuntimeError):
    """The index on disk is unusable; the message says which file and why."""


def default_root() -> Path:
    return config.home() / "novelty-index"


class NoveltyIndex:
    """Earlier tasks' accepted bundles per teacher weights CID, on disk, bounded."""

    def __init__(self, root: str | Path | None = None, max_images: int = 2_000_000):
        self.root = Path(root) if root is not None else default_root()
        self.max_images = max_images
        self._cache: dict[str, tuple[dict, Reference]] = {}   # bundle file -> (entry, reference)

    # -- writing ------------------------------------------------------------------------
    def add(self, teacher_cids: Iterable[str], images: torch.Tensor, source: dict) -> bool:
        """Store an accepted bundle (uint8 images [N, C, H, W]) under each teacher CID.
        ``source`` names it (e.g. chain_id, contract, task_id, submission, cid) and makes
        ``add`` idempotent. Returns False when it was already there for every teacher."""
        key = _bundle_key(source)
        grids = grid(images)
        codes = entry_codes(grids)
        work = reference_grid(images)  # the default resolution: a spec with another one skips these
        added = False
        for cid in _cids(teacher_cids):
            d = self.root / cid
            manifest = self._manifest(cid)
            if any(b["key"] == key for b in manifest["bundles"]):
                continue
            d.mkdir(parents=True, exist_ok=True)
            path = d / f"{key}.safetensors"
            tmp = path.with_name(f".{path.name}.part")
            save_file({"grids": grids.contiguous(), "codes": codes.contiguous(), "work": work.contiguous()}, str(tmp),
                      metadata={"format": FORMAT, "source": json.dumps(source, sort_keys=True)})
            os.replace(tmp, path)
            manifest["bundles"].append({"key": key, "file": path.name, "n": len(grids), "source": source})
            self._evict(cid, manifest)
            self._write_manifest(cid, manifest)
            added = True
        return added

    def _evict(self, cid: str, manifest: dict) -> None:
        total = sum(b["n"] for b in manifest["bundles"])
        while total > self.max_images and len(manifest["bundles"]) > 1:
            old = manifest["bundles"].pop(0)
            total -= old["n"]
            (self.root / cid / old["file"]).unlink(missing_ok=True)
            self._cache.pop(str(self.root / cid / old["file"]), None)

    # -- reading ------------------------------------------------------------------------
    def has(self, source: dict) -> bool:
        """Whether the bundle named ``source`` is stored (under any teacher)."""
        key = _bundle_key(source)
        return any(b["key"] == key for cid in self.teachers() for b in self._manifest(cid)["bundles"])

    def references(self, teacher_cids: Iterable[str] | None, where=None) -> list[Reference]:
        """One reference per stored bundle under any of ``teacher_cids`` (all teachers for
        None), each bundle once, oldest first; ``where(source)`` filters by the bundle's source."""
        cids = _cids(teacher_cids) if teacher_cids is not None else self.teachers()
        out, seen = [], set()
        for cid in cids:
            for b in self._manifest(cid)["bundles"]:
                if b["key"] in seen or (where is not None and not where(b["source"])):
                    continue
                seen.add(b["key"])
                out.append(self._load(cid, b))
        return out

    def teachers(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "manifest.json").exists())

    def stats(self) -> dict:
        per = {cid: {"bundles": len(m["bundles"]), "images": sum(b["n"] for b in m["bundles"])}
               for cid in self.teachers() for m in [self._manifest(cid)]}
        return {"root": str(self.root), "max_images": self.max_images, "teachers": per}

    def _load(self, cid: str, entry: dict) -> Reference:
        path = self.root / cid / entry["file"]
        hit = self._cache.get(str(path))
        if hit is not None:
            return hit[1]
        try:
            t = load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise NoveltyIndexError(f"{path}: unreadable novelty-index shard ({exc}); delete it or rebuild the index") from None
        g, c = t.get("grids"), t.get("codes")
        n = entry["n"]
        if (g is None or g.dtype != torch.uint8 or tuple(g.shape) != (n, GRID, GRID) or c is None
                or c.dtype != torch.int64 or tuple(c.shape) != (n, len(VARIANTS))):
            raise NoveltyIndexError(f"{path}: expected grids uint8 [{n},{GRID},{GRID}] and codes int64 [{n},{len(VARIANTS)}]")
        w = t.get("work")  # shards written before verification v3 have none: no derived check against them
        if w is not None and (w.dtype != torch.uint8 or w.dim() != 4 or len(w) != n):
            raise NoveltyIndexError(f"{path}: expected work uint8 [{n}, 1, g, g]")
        s = entry["source"]
        label = f"task {s.get('task_id', '?')} submission {s.get('submission', '?')}"
        ref = Reference("earlier_task", label, g, c, w)
        self._cache[str(path)] = (entry, ref)
        return ref

    def _manifest(self, cid: str) -> dict:
        path = self.root / cid / "manifest.json"
        if not path.exists():
            return {"format": FORMAT, "teacher": cid, "bundles": []}
        try:
            m = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise NoveltyIndexError(f"{path}: not a readable manifest ({exc})") from None
        if not isinstance(m, dict) or m.get("format") != FORMAT or not isinstance(m.get("bundles"), list):
            raise NoveltyIndexError(f"{path}: not a {FORMAT} manifest")
        for b in m["bundles"]:
            if not (isinstance(b, dict) and isinstance(b.get("key"), str) and isinstance(b.get("n"), int)
                    and isinstance(b.get("file"), str) and "/" not in b["file"] and isinstance(b.get("source"), dict)):
                raise NoveltyIndexError(f"{path}: malformed bundle entry {b!r}")
        return m

    def _write_manifest(self, cid: str, manifest: dict) -> None:
        path = self.root / cid / "manifest.json"
        tmp = path.with_name(".manifest.json.part")
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        os.replace(tmp, path)


def _bundle_key(source: dict) -> str:
    return hashlib.sha256(json.dumps(source, sort_keys=True).encode()).hexdigest()[:24]


def _cids(cids: Iterable[str]) -> list[str]:
    out = []
    for c in cids:
        try:
            out.append(str(CID.parse(c)))  # also makes it a safe directory name
        except InvalidCidError as exc:
            raise ValueError(f"teacher weights CID {c!r}: {exc}") from None
    return out
