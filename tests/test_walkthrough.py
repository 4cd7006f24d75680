"""README "A round by hand", run exactly as written: the block is taken from the README and run
by bash in a fresh CODREAM_HOME and working folder (only the ports are this test's own, through
the two environment variables every command reads). A newcomer who follows it gets a settled
task, paid miners and verifiers, and readable status views."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, run_cli

# a whole round by hand on a devnet: `make test` runs it, `make test-fast` does not
pytestmark = pytest.mark.slow



def readme_block(heading: str) -> str:
    text = (REPO / "README.md").read_text()
    section = text.split(f"## {heading}", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


@pytest.mark.timeout(2400)
def test_the_readme_round_by_hand_settles_and_pays(tmp_path):
    block = readme_block("A round by hand")
    assert "codream devnet up" in block and "codream task wait 1 --phase finalized" in block
    a, i = free_port(), free_port()
    env = {**os.environ, "CODREAM_HOME": str(tmp_path / "home"), "CODREAM_RPC_URL": f"http://127.0.0.1:{a}",
           "CODREAM_IPFS_API": f"/ip4/127.0.0.1/tcp/{i}/http",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("CODREAM_ACCOUNT", None)
    work = tmp_path / "work"
    work.mkdir()
    script = "set -euxo pipefail\n" + block.replace("codream devnet down", "true  # (the test reads the chain first)")
    out = tmp_path / "walkthrough.out"
    with open(out, "w") as fh:  # written as it runs: a failure shows how far the newcomer got
        done = subprocess.run(["bash", "-c", script], cwd=work, env=env, stdout=fh, stderr=subprocess.STDOUT,
                              text=True, timeout=2200)
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in work.glob("*.log"))
    try:
        assert done.returncode == 0, f"{out.read_text()[-4000:]}\n{logs}"
        assert "finalized" in out.read_text()
        shown = json.loads(run_cli("task", "show", "1", "--json", env=env).stdout)
        assert shown["phase"] == "finalized"
        assert [s["status"] for s in shown["submissions"]] == ["accepted", "accepted"], shown["submissions"]
        assert all(not s["faulty"] for s in shown["committee"]) and len(shown["committee"]) == 5
        assert [o["verdict"] for o in shown["owners"]] == ["good"]  # the owner's eval set passed the check
        for who in ("miner1", "verifier1"):
            address = json.loads(run_cli("account", "address", str(work / "keys" / f"{who}.json"), env=env).stdout)
            rew = json.loads(run_cli("rewards", "--json", "--address", address["address"], env=env).stdout)
            earned = sum(h["wei"] for h in rew["history"] if h["kind"] != "withdrawn")
            assert earned > 0 or who == "verifier1" and not any(
                s["verifier"] == address["address"] for s in shown["committee"]), rew
    finally:
        subprocess.run([sys.executable, "-m", "cli", "devnet", "down"], env=env, capture_output=True)
