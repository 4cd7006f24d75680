"""`codream bench market`: what it costs to buy a verdict on market v3, as JSON.

For an attacker with a share p of the active stake (10 %, 20 %, 33 %):

- the chance of holding a majority of one submission's r seats (independent stake-weighted draws,
  with replacement), for r = 3..25 and at the default r = 15, of an appeal committee (2r + 1)
  and of both;
- seed grinding under the new rule: a builder with a share f of the blocks (here f = p) can only
  leave the draw out of its own blocks unless that block's draw captures, so
  P(capture) = q / (1 - f (1 - q)); the expected loss per grind that both captures the committee
  and survives the appeal ("the cost of a successful seed grind"), against v2's rule (the builder
  of blockhash(request + 2) tries hashes for free: cost ~ 0);
- the expected net of steering a verdict (a junk submission voted in by the attacker's seats),
  with the appeal and the overturn slash, and of the issue-22 attacks as measured in forge
  (tests/forge/Attacks.t.sol: each scenario's net with real money; the NETJSON lines).

The model's assumptions are part of the output (`assumptions`).
"""
from __future__ import annotations

import json
import os
import subprocess

from codream import config
from codream.protocol import DEFAULT_SEATS_PER_SUBMISSION, censored_capture_probability, seat_majority_probability

SHARES = {"10%": 0.10, "20%": 0.20, "33%": 1 / 3}
ETH = 10**18
# the model's economy (docs/protocol-v3.md §4.1, §7)
BOUNTY, BOND, TOTAL_STAKE = 1.0, 0.01, 100.0  # ETH
OVERTURN_SLASH_BPS, OVERTURN_SLASH_MIN, SEAT_SLASH, APPELLANT_SHARE = 0.10, 0.10, 0.02, 0.5
FEE = 0.10


def majority_table() -> dict:
    """P(majority of r seats) for odd r = 3..25 and each stake share."""
    return {str(r): {name: seat_majority_probability(p, r) for name, p in SHARES.items()} for r in range(3, 26, 2)}


def _overturn_loss(p: float, seats: int) -> float:
    """Stake an attacker (one identity holding p of TOTAL_STAKE) loses when `seats` of its seats are
    overturned: 10 % of its stake per seat (at least 0.1 ETH), compounding, plus SEAT_SLASH each."""
    stake, lost = p * TOTAL_STAKE, 0.0
    for _ in range(seats):
        cut = max(OVERTURN_SLASH_BPS * stake, OVERTURN_SLASH_MIN)
        cut = min(cut, stake)
        lost, stake = lost + cut, stake - cut
    return lost + min(SEAT_SLASH * seats, stake)


def steer(p: float, r: int, f: float) -> dict:
    """A junk submission (honest result: Rejected) that the attacker's seats vote 10,000 when they
    hold its majority (it knows after the draw); honest seats in the minority appeal; a fresh
    committee of 2r + 1 decides. Gain if it keeps the verdict: the whole miner pot."""
    q = seat_majority_probability(p, r)
    captured = censored_capture_probability(q, f)  # the builder censors the draw out of its blocks
    qa = seat_majority_probability(p, 2 * r + 1)
    gain = BOUNTY * (1 - FEE)
    majority = r // 2 + 1
    lose_if_overturned = _overturn_loss(p, majority) + BOND / 2
    net = captured * (qa * gain - (1 - qa) * lose_if_overturned) - (1 - captured) * BOND / 2
    success = captured * qa
    expected_loss = captured * (1 - qa) * lose_if_overturned + (1 - captured) * BOND / 2
    return {"p_majority_one_draw": q, "p_capture_with_censoring_builder": captured, "p_capture_appeal": qa,
            "p_keep_the_verdict": success, "expected_net_eth": net,
            "cost_of_a_successful_grind_eth": expected_loss / success if success else None,
            "overturn_loss_eth": lose_if_overturned}


def forge_nets() -> dict:
    """The issue-22 attack scenarios' nets measured in forge (wei), from tests/forge/Attacks.t.sol."""
    env = dict(os.environ, PATH=f"{config.REPO_ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}")
    res = subprocess.run(["forge", "test", "--match-contract", "AttacksTest", "-vv"], cwd=config.REPO_ROOT,
                         capture_output=True, text=True, env=env, timeout=1800)
    out = {}
    for line in res.stdout.splitlines():
        if "NETJSON" in line:
            out.update(json.loads(line.split("NETJSON", 1)[1]))
    if not out:
        raise RuntimeError(f"forge attack run failed:\n{res.stdout[-3000:]}{res.stderr[-2000:]}")
    return {k: {"net_wei": v, "net_eth": v / ETH} for k, v in sorted(out.items())}


def bench_market(measured: bool = True) -> dict:
    r = DEFAULT_SEATS_PER_SUBMISSION
    per_share = {}
    for name, p in SHARES.items():
        s = steer(p, r, f=p)
        per_share[name] = {
            "p_majority_of_one_submissions_seats": s["p_majority_one_draw"],
            "p_majority_of_an_appeal_committee": s["p_capture_appeal"],
            "p_majority_of_both": s["p_keep_the_verdict"] / s["p_capture_with_censoring_builder"] * s[
                "p_majority_one_draw"],
            "seed_grind": {"v2_cost_eth": 0.0, "v2_note": "the builder of blockhash(request + 2) tries hashes for free",
                           "v3_p_capture": s["p_capture_with_censoring_builder"],
                           "v3_cost_of_a_successful_grind_eth": s["cost_of_a_successful_grind_eth"]},
            "steer_a_verdict_expected_net_eth": s["expected_net_eth"],
        }
    out = {
        "defaults": {"seats_per_submission": r, "appeal_seats": 2 * r + 1},
        "majority_of_one_submissions_seats": majority_table(),
        "by_stake_share": per_share,
        "goals": {"majority_below_1pct_at_20pct_with_defaults":
                  per_share["20%"]["p_majority_of_one_submissions_seats"] < 0.01,
                  "steering_nets_below_0_up_to_33pct": all(v["steer_a_verdict_expected_net_eth"] < 0
                                                           for v in per_share.values())},
        "assumptions": {"bounty_eth": BOUNTY, "bond_eth": BOND, "total_active_stake_eth": TOTAL_STAKE,
                        "fee": FEE, "builder_block_share": "equal to the stake share",
                        "attacker": "one identity; it lies only when the draw gave it a majority (it knows)",
                        "gain_if_kept": "the whole miner pot", "overturn_slash": "10 % of its stake per seat, "
                        "at least 0.1 ETH, plus SEAT_SLASH; the appellant gets half, the rest is burned"},
    }
    if measured:
        nets = forge_nets()
        out["attacks_measured_in_forge"] = nets
        out["goals"]["every_measured_attack_nets_at_most_0"] = all(v["net_wei"] <= 0 for k, v in nets.items())
    return out


if __name__ == "__main__":
    print(json.dumps(bench_market()))
