"""Task owners: create a task, co-fund one, reveal an eval set.

The eval set's CID is committed (hash with a salt) when the owner funds the task, together with
the owner's declared accuracy of the task's teacher ensemble on it (computed here from the task
folder; verifiers check it at the reveal: protocol v3). The set stays off IPFS until the reveal,
right after the commit window (every CID is committed by then, so no miner can fit its dreams to
it; no bundle is public yet). An owner who does not reveal in that window loses its contribution.
The salt is on disk (owner state, keyed by the chain instance) before the commitment goes on chain.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from codream.agent import AgentState, chain_key
from codream.chain import Chain
from codream.evalset import EvalSetError, ensemble_accuracy_bps, load_eval_set
from codream.protocol import Phase, eval_commitment, new_salt, salt_bytes
from codream.spec import TaskSpec, load as load_spec, parse_bytes, validate
from codream.teachers import load_teachers
from ipfs import IpfsClient, cid_of_file


class OwnerError(ValueError):
    """The owner's files or records do not allow this step; the message says why."""


def set_quality_bar(task_dir: str | Path, out: str | Path, *, min_gain_bps: int | None = None,
                    reference_images: int | None = None) -> TaskSpec:
    """A copy of the task folder ``task_dir`` in ``out`` whose spec carries the owner's economics: the
    quality bar (``scoring.min_gain_bps``) and the unit new images are paid in
    (``scoring.novelty.reference_images``). The spec is validated before it is written, so a bad
    value is a ``SpecError`` naming the field and nothing is left half-written; returns the new spec."""
    src, out = Path(task_dir), Path(out)
    raw = load_spec(src / "spec.json").raw
    if min_gain_bps is not None:
        raw["scoring"]["min_gain_bps"] = min_gain_bps
    if reference_images is not None:
        raw["scoring"].setdefault("novelty", {})["reference_images"] = reference_images
    spec = validate(raw)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(src, out)
    (out / "spec.json").write_text(spec.to_json())
    return load_spec(out / "spec.json")


def owner_state(chain: Chain) -> AgentState:
    return AgentState("owner", chain.account.address, chain_key(chain))


def publish_spec(ipfs: IpfsClient, task_dir: Path) -> str:
    """Pin the teachers' weights and the spec; check the spec names the files' CIDs."""
    spec = load_spec(task_dir / "spec.json")
    for i, t in enumerate(spec.teachers):
        path = task_dir / t.get("file", f"teacher{i}.safetensors")
        if not path.exists():
            raise OwnerError(f"teachers[{i}]: {path} not found (the spec's `file` hint must sit beside spec.json)")
        cid = ipfs.add_file(path)
        if cid != t["weights_cid"]:
            raise OwnerError(f"teachers[{i}]: {path} has CID {cid}, the spec names {t['weights_cid']}")
    return ipfs.add_file(task_dir / "spec.json")


def _commit_eval(state: AgentState, eval_path: Path) -> tuple[str, str]:
    """Record (eval CID, salt) as pending before the commitment leaves; return them."""
    if not eval_path.exists():
        raise OwnerError(f"eval set {eval_path} not found")
    eval_cid = cid_of_file(eval_path)  # only the hash: the eval set stays off IPFS until the reveal
    salt = new_salt()
    state.data.setdefault("pending", []).append({"eval_cid": eval_cid, "salt": salt, "eval_path": str(eval_path)})
    state.save()
    return eval_cid, salt


def _record(state: AgentState, tid: int, eval_cid: str, salt: str, eval_path: Path, **extra) -> None:
    state.data["pending"] = [p for p in state.data.get("pending", []) if p["salt"] != salt]
    state.task(tid).update(stage="funded", eval_cid=eval_cid, salt=salt, eval_path=str(eval_path), **extra)
    state.save()


def declared_accuracy(spec: TaskSpec, eval_path: str | Path, client: IpfsClient | None = None) -> int:
    """The accuracy (bps) of the spec's teacher ensemble on an eval set, as verifiers will measure
    it (``codream.evalset.check_eval_set``): what the owner declares when it funds the task."""
    try:
        x, y = load_eval_set(eval_path, spec)
    except EvalSetError as exc:
        raise OwnerError(str(exc)) from None
    return ensemble_accuracy_bps(spec, load_teachers(spec, client=client), x, y)


def create_task(chain: Chain, ipfs: IpfsClient, task_dir: str | Path, bounty_wei: int, bond_wei: int,
                seats: int, seats_per_submission: int, windows: list[int], fee_bps: int = 1000,
                eval_path: str | Path | None = None, accuracy_bps: int | None = None) -> dict:
    """Publish teachers and spec, commit to the (still private) eval set and its declared teacher
    accuracy (measured here unless given), fund the bounty. ``windows``: commit, eval reveal,
    reveal, score commit, score reveal (seconds)."""
    task_dir = Path(task_dir)
    eval_path = Path(eval_path) if eval_path else task_dir / "eval.safetensors"
    spec = load_spec(task_dir / "spec.json")
    if accuracy_bps is None:
        accuracy_bps = declared_accuracy(spec, eval_path)
    spec_cid = publish_spec(ipfs, task_dir)
    state = owner_state(chain)
    eval_cid, salt = _commit_eval(state, eval_path)
    receipt = chain.send("createTask", spec_cid, eval_commitment(eval_cid, salt_bytes(salt)), accuracy_bps, bond_wei,
                         seats, seats_per_submission, spec.scoring.min_gain_bps, spec.scoring.tolerance_bps,
                         fee_bps, windows, value=bounty_wei)
    tid = chain.market.events.TaskCreated().process_receipt(receipt)[0]["args"]["taskId"]
    _record(state, tid, eval_cid, salt, eval_path, spec_cid=spec_cid, owner_index=0, accuracy_bps=accuracy_bps)
    return {"task_id": tid, "spec_cid": spec_cid, "eval_commitment_for": eval_cid, "bounty_wei": bounty_wei,
            "declared_accuracy_bps": accuracy_bps}


def join_task(chain: Chain, task_id: int, eval_path: str | Path, contribution_wei: int,
              ipfs: IpfsClient | None = None, accuracy_bps: int | None = None) -> dict:
    """Co-own a task: add to its bounty and commit to this owner's own eval set and its declared
    teacher accuracy (measured here, with the task's spec and teachers from IPFS, unless given)
    in the commit window. A co-owner pays at least max(0.01 ETH, 10 % of the creator's part)."""
    eval_path = Path(eval_path)
    if accuracy_bps is None:
        client = ipfs or IpfsClient()
        spec = parse_bytes(client.cat(chain.view("getTask", task_id)["specCid"], max_bytes=1 << 20))
        accuracy_bps = declared_accuracy(spec, eval_path, client=client)
    state = owner_state(chain)
    eval_cid, salt = _commit_eval(state, eval_path)
    receipt = chain.send("joinTask", task_id, eval_commitment(eval_cid, salt_bytes(salt)), accuracy_bps,
                         value=contribution_wei)
    index = chain.market.events.TaskJoined().process_receipt(receipt)[0]["args"]["ownerIndex"]
    _record(state, task_id, eval_cid, salt, eval_path, owner_index=index, accuracy_bps=accuracy_bps)
    return {"task_id": task_id, "owner_index": index, "eval_commitment_for": eval_cid,
            "contribution_wei": contribution_wei, "declared_accuracy_bps": accuracy_bps}


def reveal_eval(chain: Chain, ipfs: IpfsClient, task_id: int, publish: bool = True) -> str:
    """Pin this owner's eval set and reveal its CID (eval-reveal window, right after the commit
    window). ``publish=False`` reveals the CID without pinning the content (only the adversarial
    demo's owner does that)."""
    state = owner_state(chain)
    st = state.task(task_id)
    if "eval_cid" not in st:
        raise OwnerError(f"task {task_id}: no eval set recorded for {chain.account.address} "
                         f"(was it funded from this account and CODREAM_HOME, on this chain?)")
    cid = ipfs.add_file(st["eval_path"]) if publish else st["eval_cid"]
    if cid != st["eval_cid"]:
        raise OwnerError(f"{st['eval_path']} changed since the task was funded ({cid} != {st['eval_cid']})")
    chain.send("revealEval", task_id, st["owner_index"], cid, salt_bytes(st["salt"]))
    st["stage"] = "eval revealed"
    state.save()
    return cid


def auto_reveal(chain: Chain, ipfs: IpfsClient, task_id: int, poll: float = 2.0) -> str:
    """Wait for the eval-reveal window (the end of the commit window), then reveal."""
    while Phase(chain.phase(task_id)) == Phase.COMMIT:
        time.sleep(poll)
    return reveal_eval(chain, ipfs, task_id)
