// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICoDreamMarket} from "../../contracts/interfaces/ICoDreamMarket.sol";
import {StakeRegistry} from "../../contracts/StakeRegistry.sol";
import {Scores} from "../../contracts/libraries/Scores.sol";
import {MarketBase} from "./MarketBase.sol";

/// Whole rounds with exact books: every wei of a task ends claimable by someone, and the
/// contract's balance always equals sum(claimable) + sum(escrow).
contract MarketRoundTest is MarketBase {
    address[] internal verifiers;

    function setUp() public override {
        super.setUp();
        for (uint256 i; i < 5; ++i) {
            verifiers.push(actor(10 + i));
            stakeAs(actor(10 + i), 1 ether);
        }
        vm.roll(block.number + 1);
    }

    function _books(uint256 id) internal view returns (uint256 owed) {
        owed = m.getTask(id).escrow;
        for (uint256 i; i < 200; ++i) owed += m.claimable(actor(i));
    }

    function test_FullRoundPaysRewardsBondsAndThePotExactly() public {
        uint256 id = newTask(actor(0), 1 ether, 5, 3, 100, 150, 1000);
        truth[0] = 6000;
        truth[1] = 2000;
        truth[2] = 50; // below min gain: rejected, half the bond forfeited
        truth[3] = Scores.INVALID; // whole bond forfeited
        truth[4] = 4000;
        submit(id, 6, 6); // submission 5 never revealed
        revealEvalAs(id, 0);
        address[] memory seats = draw(id);
        scoreRound(id);
        settleAll(id, 2);

        (ICoDreamMarket.Status st0, int32 r0) = status(id, 0);
        assertTrue(st0 == ICoDreamMarket.Status.Accepted && r0 == 6000, "s0 accepted at 6000");
        (ICoDreamMarket.Status st2,) = status(id, 2);
        assertTrue(st2 == ICoDreamMarket.Status.Rejected, "s2 rejected");
        (ICoDreamMarket.Status st3,) = status(id, 3);
        assertTrue(st3 == ICoDreamMarket.Status.Invalid, "s3 invalid");
        (ICoDreamMarket.Status st5,) = status(id, 5);
        assertTrue(st5 == ICoDreamMarket.Status.Unrevealed, "s5 unrevealed");

        // miner pot 0.9 ether pro rata to 6000 : 2000 : 4000
        assertEq(m.claimable(actor(100)), 0.45 ether + BOND, "s0 reward + bond");
        assertEq(m.claimable(actor(101)), 0.15 ether + BOND, "s1 reward + bond");
        assertEq(m.claimable(actor(102)), BOND / 2, "s2 half bond");
        assertEq(m.claimable(actor(103)), 0, "s3 nothing");
        assertEq(m.claimable(actor(104)), 0.3 ether + BOND, "s4 reward + bond");
        assertEq(m.claimable(actor(105)), 0, "s5 nothing");
        assertEq(m.claimable(actor(0)), 0, "owner: every accepted wei was paid");

        // pot = fee + forfeits, pro rata to the agree counts (every revealed submission resolved)
        uint256 pot = 0.1 ether + BOND / 2 + BOND + BOND;
        uint256 totalAgree;
        for (uint256 j; j < 5; ++j) {
            (uint256 agree, uint256 disagree) = m.seatStats(id, j);
            assertEq(disagree, 0, "honest seats never disagree");
            totalAgree += agree;
        }
        assertEq(totalAgree, 5 * 3, "5 revealed submissions x 3 seats");
        uint256 paid;
        for (uint256 i; i < verifiers.length; ++i) paid += m.claimable(verifiers[i]);
        assertEq(paid, pot, "pot fully paid to seats");
        for (uint256 j; j < 5; ++j) assertEq(reg.info(seats[j]).lockedSeats, 0, "unlocked");
        assertEq(m.getTask(id).escrow, 0, "escrow empty");
        assertEq(address(m).balance, _books(id), "balance == claimable + escrow");
    }

    function test_MajorityDecidesAndSilenceCounts() public {
        uint256 id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        truth[0] = 4000;
        truth[1] = 4000;
        submit(id, 2, 0);
        revealEvalAs(id, 0);
        draw(id);
        mode[0] = Mode.Invalid;
        mode[1] = Mode.Invalid; // two INVALID, three honest: the honest majority wins
        scoreRound(id);
        settleAll(id, 100);
        (ICoDreamMarket.Status st, int32 r) = status(id, 0);
        assertTrue(st == ICoDreamMarket.Status.Accepted && r == 4000, "minority INVALID cannot force INVALID");
        (uint256 a0, uint256 d0) = m.seatStats(id, 0);
        assertTrue(a0 == 0 && d0 == 2, "INVALID seat disagreed");
    }

    function test_NoMajorityIsUnresolvedAndMinersShare() public {
        uint256 id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        truth[0] = 4000;
        submit(id, 1, 0);
        revealEvalAs(id, 0);
        draw(id);
        mode[0] = Mode.Invalid;
        mode[1] = Mode.Invalid;
        mode[2] = Mode.Silent;
        mode[3] = Mode.Silent;
        mode[4] = Mode.Silent;
        scoreRound(id);
        settleAll(id, 100);
        (ICoDreamMarket.Status st,) = status(id, 0);
        assertTrue(st == ICoDreamMarket.Status.Unresolved, "2 of 5 is no majority");
        // the only submission is unresolved: it gets the whole miner pot and its bond; the silent
        // seats are slashed, the INVALID ones judged nothing (no result stood) so no seat earned:
        // the pot (fee + 3 slashes) goes to the revealed miner too, never to the owner
        assertEq(m.claimable(actor(0)), 0, "owner gets nothing");
        assertEq(m.claimable(actor(100)), 1 ether + BOND + 3 * m.SEAT_SLASH(), "miner gets bounty + slashes");
        assertEq(address(m).balance, _books(id), "books");
    }

    function test_FailedRoundWithoutEvalPaysRevealedMiners() public {
        uint256 id = newTask(actor(0), 1 ether, 3, 2, 100, 150, 1000);
        submit(id, 3, 3); // 2 revealed, 1 unrevealed
        vm.warp(uint256(m.getTask(id).evalRevealEnd) + 1);
        assertTrue(m.phaseOf(id) == ICoDreamMarket.Phase.AwaitingSettlement, "no eval: settle");
        settleAll(id, 1);
        assertEq(m.claimable(actor(100)), 0.5 ether + BOND + BOND / 2, "half the bounty, bond, half a forfeit");
        assertEq(m.claimable(actor(101)), 0.5 ether + BOND + BOND / 2, "same");
        assertEq(m.claimable(actor(0)), 0, "owner gets nothing");
        assertEq(address(m).balance, _books(id), "books");
    }

    function test_NobodyRevealedRefundsTheOwnersProRata() public {
        uint256 id = newTask(actor(0), 1 ether, 3, 2, 100, 150, 1000);
        vm.deal(actor(1), 3 ether);
        vm.prank(actor(1));
        m.joinTask{value: 3 ether}(id, evalCommitment(actor(1)));
        commitAs(actor(100), id, "bafyx");
        toEval(id);
        settleAll(id, 1);
        assertEq(m.claimable(actor(0)), 1 ether + BOND / 4, "owner 0: its bounty and a quarter of the bond");
        assertEq(m.claimable(actor(1)), 3 ether + BOND * 3 / 4, "owner 1: its bounty and three quarters");
        assertEq(address(m).balance, _books(id), "books");
    }

    function test_SubmissionScoredOnlyByItsOwnMinerGetsItsBondAndNoShare() public {
        // one verifier holds every seat; it also mines: nobody can judge its submission
        address v = actor(10);
        uint256 id = newTask(actor(0), 1 ether, 3, 3, 100, 150, 1000);
        truth[0] = 5000;
        truth[1] = 9999; // what v would like its own junk to score
        commitAs(actor(100), id, "bafyhonest");
        commitAs(v, id, "bafyjunk");
        toReveal(id);
        revealAs(actor(100), id, 0, "bafyhonest");
        revealAs(v, id, 1, "bafyjunk");
        toEval(id);
        revealEvalAs(id, 0);
        for (uint256 i = 1; i < 5; ++i) {
            vm.prank(verifiers[i]);
            reg.requestUnbond(); // only v stays eligible
        }
        vm.roll(block.number + 1);
        address[] memory seats = draw(id);
        for (uint256 j; j < 3; ++j) assertEq(seats[j], v, "v holds every seat");
        scoreRound(id);
        settleAll(id, 3);
        (ICoDreamMarket.Status st1, int32 r1) = status(id, 1);
        assertTrue(st1 == ICoDreamMarket.Status.Unscored && r1 == Scores.NO_EVAL, "unscored");
        assertEq(m.claimable(actor(100)), 0.9 ether + BOND, "the honest miner gets the whole miner pot");
        assertEq(m.claimable(v), 0.1 ether + BOND, "v: the fee for judging s0, its own bond back, no share");
        assertEq(address(m).balance, _books(id), "books");
    }

    /// any mix of seat behaviours and unrevealed submissions ends final with every wei claimable
    function testFuzz_AnyRoundEndsWithEveryWeiClaimable(uint256 seed) public {
        uint8 k = uint8(bound(seed, 1, 7));
        uint8 r = uint8(bound(seed >> 8, 1, k));
        uint256 n = bound(seed >> 16, 1, 12);
        uint256 bounty = bound(seed >> 24, 1, 3 ether);
        uint256 id = newTask(actor(0), bounty, k, r, int16(int256(bound(seed >> 64, 0, 600))),
            uint16(bound(seed >> 80, 0, 300)), uint16(bound(seed >> 96, 0, 5000)));
        for (uint256 s; s < n; ++s) {
            uint256 h = uint256(keccak256(abi.encode(seed, s)));
            truth[s] = h % 5 == 0 ? Scores.INVALID : int32(int256(h % 8000)) - 1000;
        }
        uint256 every = bound(seed >> 112, 0, 4); // 0: all revealed, else every j-th is never revealed
        submit(id, n, every == 1 ? 2 : every);
        revealEvalAs(id, 0);
        draw(id);
        for (uint256 j; j < k; ++j) mode[j] = Mode(uint8(uint256(keccak256(abi.encode(seed, "mode", j))) % 7));
        scoreRound(id);
        settleAll(id, bound(seed >> 120, 1, 9));
        assertEq(m.getTask(id).escrow, 0, "escrow left");
        assertEq(address(m).balance, _books(id), "balance != claimable + escrow");
        uint256 stakes;
        for (uint256 i; i < verifiers.length; ++i) {
            stakes += reg.stakeOf(verifiers[i]);
            assertEq(reg.info(verifiers[i]).lockedSeats, 0, "a seat stayed locked");
        }
        assertEq(address(reg).balance, stakes, "registry balance != stakes");
        assertLe(m.claimable(actor(0)), bounty, "the owner got more than its bounty back");
    }
}

