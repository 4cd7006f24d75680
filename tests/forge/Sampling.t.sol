// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICoDreamMarket} from "../../contracts/interfaces/ICoDreamMarket.sol";
import {MarketBase} from "./MarketBase.sol";

/// Property 1: seats follow stake, not addresses.
///
/// Seat j of a draw is `sampleAt(snapshot, keccak(seed, j) % total)`: K independent
/// stake-weighted samples WITH replacement, so a verifier's expected seat count is
/// K * stake / total however the stake is split across addresses.
///
/// v1 drew WITHOUT replacement (a drawn verifier's weight was removed before the next seat):
/// one address could hold at most one seat, so splitting a stake S across m addresses bought up to
/// m seats instead of ~1; the reference sampler below reproduces that to show this test fails on it.
contract SeatsFollowStakeTest is MarketBase {
    uint256 internal constant DRAWS = 2000;
    uint256 internal constant K = 16;
    uint256 internal constant S = 4 ether;
    uint256 internal constant SPLIT = 8; // the group splits S across 8 addresses

    address internal whole;
    address[] internal group;
    uint256 internal snap;

    function setUp() public override {
        super.setUp();
        whole = actor(1);
        stakeAs(whole, S);
        for (uint256 i; i < SPLIT; ++i) {
            group.push(actor(10 + i));
            stakeAs(actor(10 + i), S / SPLIT);
        }
        stakeAs(actor(2), S); // two bystanders with S each
        stakeAs(actor(3), S);
        address[] memory all = new address[](SPLIT + 3);
        (all[0], all[1], all[2]) = (whole, actor(2), actor(3));
        for (uint256 i; i < SPLIT; ++i) all[3 + i] = group[i];
        warmUp(all); // activates every stake, then rolls a block
        snap = block.number - 1;
    }

    function _isGroup(address a) internal view returns (bool) {
        for (uint256 i; i < group.length; ++i) if (group[i] == a) return true;
        return false;
    }

    /// seats of `whole` and of the group over DRAWS draws of K seats, the way drawCommittee draws
    function _draw() internal view returns (uint256 w, uint256 g, uint256 wTwice) {
        uint256 total = reg.totalAt(snap);
        for (uint256 d; d < DRAWS; ++d) {
            bytes32 seed = keccak256(abi.encode("draw", d));
            uint256 wHere;
            for (uint256 j; j < K; ++j) {
                address v = reg.sampleAt(snap, uint256(keccak256(abi.encode(seed, j))) % total);
                if (v == whole) ++wHere;
                else if (_isGroup(v)) ++g;
            }
            w += wHere;
            if (wHere >= 2) ++wTwice;
        }
    }

    /// v1's draw: a stake-weighted pick among the verifiers not drawn yet
    function _withoutReplacement(uint256 r, uint256 remaining, address[] memory taken, uint256 n)
        internal view returns (address)
    {
        r %= remaining;
        address[12] memory all = [whole, group[0], group[1], group[2], group[3], group[4], group[5], group[6],
            group[7], actor(2), actor(3), address(0)];
        for (uint256 i; i < 11; ++i) {
            bool gone;
            for (uint256 t; t < n; ++t) if (taken[t] == all[i]) gone = true;
            if (gone) continue;
            uint256 wt = reg.weightAt(all[i], snap);
            if (r < wt) return all[i];
            r -= wt;
        }
        return address(0); // everyone drawn (v1 reverted TooFewVerifiers instead)
    }

    function test_SplittingAStakeAcrossAddressesGainsNoSeats() public view {
        (uint256 w, uint256 g, uint256 wTwice) = _draw();
        log(string.concat("seats over 2,000 draws of 16: whole stake ", _u(w), ", split stake ", _u(g)));
        // each seat: P(whole) = P(group) = S / 4S = 1/4; over n = DRAWS * K = 32,000 seats
        // E = 8,000 each, sd(count) = sqrt(n p (1-p)) = 77.5, sd(w - g) = sqrt(n (pw + pg)) = 126.5
        assertLe(w > g ? w - g : g - w, 506, "one stake and the same stake split differ by more than 4 sd");
        assertLe(w > 8000 ? w - 8000 : 8000 - w, 310, "the whole stake's seats are off by more than 4 sd");
        assertLe(g > 8000 ? g - 8000 : 8000 - g, 310, "the group's seats are off by more than 4 sd");
        // with replacement: the whole stake often holds several seats of one committee
        assertTrue(wTwice > DRAWS / 2, "seats are not drawn with replacement");
    }

    function test_V1WithoutReplacementRewardedSplitting() public view {
        // K = 16 seats, 11 verifiers: v1 could not even fill the committee; with K = 8 of them
        // the split group would take up to 8 seats against at most 1 for the whole stake.
        uint256 total = reg.totalAt(snap);
        uint256 w;
        uint256 g;
        for (uint256 d; d < 500; ++d) {
            bytes32 seed = keccak256(abi.encode("v1", d));
            address[] memory taken = new address[](8);
            uint256 removed;
            for (uint256 j; j < 8; ++j) {
                uint256 r = uint256(keccak256(abi.encode(seed, j)));
                address v = _withoutReplacement(r, total - removed, taken, j);
                taken[j] = v;
                removed += reg.weightAt(v, snap);
                if (v == whole) ++w;
                else if (_isGroup(v)) ++g;
            }
        }
        assertLe(w, 500, "v1: at most one seat per address");
        assertTrue(g > 2 * w, "v1: splitting should have paid (this is the flaw v2 removes)");
    }

    function test_CommitteeDrawHoldsSeveralSeatsPerVerifier() public {
        // the market's own draw, end to end: one verifier can hold several seats
        uint256 id = newTask(actor(0), 1 ether, 64, 5, 100, 150, 1000);
        address[] memory seats = submit(id, 1, 0);
        uint256[] memory mine = lens.seatsOf(id, whole);
        assertTrue(mine.length >= 2, "64 seats, 1/4 of the stake: several seats expected");
        assertEq(reg.info(whole).lockedSeats, mine.length, "each seat locks");
        uint256 fromWhole;
        for (uint256 j; j < seats.length; ++j) if (seats[j] == whole) ++fromWhole;
        assertEq(fromWhole, mine.length, "seatsOf");
        assertTrue(m.phaseOf(id) == ICoDreamMarket.Phase.ScoreCommit, "drawn");
        assertTrue(lens.seatsOf(id, whole).length == mine.length, "the lens agrees");
    }
}
