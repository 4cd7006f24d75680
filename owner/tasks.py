"""Task owners: create a task, reveal its eval set."""
from __future__ import annotations

import time
from pathlib import Path

from codream.agent import AgentState, chain_key
from codream.chain import Chain
from codream.protocol import Phase, eval_commitment, new_salt, salt_bytes
from codream.spec import load as load_spec
from ipfs import IpfsClient, cid_of_file


class OwnerError(ValueError):
    """The owner's files or records do not allow this step; the message says why."""


def owner_state(chain: Chain) -> AgentState:
    return AgentState("owner", chain.account.address, chain_key(chain))


def create_task(chain: Chain, ipfs: IpfsClient, task_dir: str | Path, bounty_wei: int, bond_wei: int,
                committee: int, windows: list[int], fee_bps: int = 1000) -> dict:
    """Publish teacher weights and spec, commit to the (still private) eval set, fund the bounty."""
    task_dir = Path(task_dir)
    spec = load_spec(task_dir / "spec.json")
    for i, t in enumerate(spec.teachers):
        path = task_dir / t.get("file", f"teacher{i}.safetensors")
        cid = ipfs.add_file(path)
        if cid != t["weights_cid"]:
            raise OwnerError(f"teachers[{i}]: {path} has CID {cid}, the spec names {t['weights_cid']}")
    spec_cid = ipfs.add_file(task_dir / "spec.json")
    eval_path = task_dir / "eval.safetensors"
    eval_cid = cid_of_file(eval_path)  # only the hash: the eval set stays off IPFS until the reveal
    salt = new_salt()
    state = owner_state(chain)
    pending = state.data.setdefault("pending", [])
    pending.append({"eval_cid": eval_cid, "salt": salt, "eval_path": str(eval_path), "spec_cid": spec_cid})
    state.save()  # the salt is on disk before the commitment goes on chain
    receipt = chain.send("createTask", spec_cid, eval_commitment(eval_cid, salt_bytes(salt)), bond_wei,
                         committee, spec.scoring["min_gain_bps"], spec.scoring["tolerance_bps"], fee_bps,
                         windows, value=bounty_wei)
    tid = chain.market.events.TaskCreated().process_receipt(receipt)[0]["args"]["taskId"]
    pending.remove(pending[-1])
    state.task(tid).update(stage="created", eval_cid=eval_cid, salt=salt, eval_path=str(eval_path),
                           spec_cid=spec_cid)
    state.save()
    return {"task_id": tid, "spec_cid": spec_cid, "eval_commitment_for": eval_cid, "bounty_wei": bounty_wei}


def reveal_eval(chain: Chain, ipfs: IpfsClient, task_id: int) -> str:
    state = owner_state(chain)
    st = state.task(task_id)
    if "eval_cid" not in st:
        raise OwnerError(f"task {task_id}: no eval set recorded for {chain.account.address} "
                         f"(was it created from this account and CODREAM_HOME, on this chain?)")
    cid = ipfs.add_file(st["eval_path"])
    if cid != st["eval_cid"]:
        raise OwnerError(f"{st['eval_path']} changed since the task was created ({cid} != {st['eval_cid']})")
    chain.send("revealEval", task_id, cid, salt_bytes(st["salt"]))
    st["stage"] = "eval revealed"
    state.save()
    return cid


def auto_reveal(chain: Chain, ipfs: IpfsClient, task_id: int, poll: float = 2.0) -> str:
    """Wait for the eval-reveal window, then reveal."""
    while chain.phase(task_id) in (Phase.COMMIT, Phase.REVEAL):
        time.sleep(poll)
    return reveal_eval(chain, ipfs, task_id)
