// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICoDreamMarket} from "../../contracts/interfaces/ICoDreamMarket.sol";
import {Scores} from "../../contracts/libraries/Scores.sol";
import {MarketBase} from "./MarketBase.sol";

/// Whole v3 rounds with exact books: money moves only on a judgement; every wei of a task ends
/// claimable by someone or burned, and the market's balance always equals
/// sum(claimable) + sum(escrow) + burned.
contract MarketRoundTest is MarketBase {
    address[] internal verifiers;

    function setUp() public override {
        super.setUp();
        verifiers = activeVerifiers(10, 5, 1 ether);
    }

    function _owner(uint256 id, uint256 i) internal view returns (ICoDreamMarket.Owner memory) {
        return m.owners(id)[i];
    }

    function test_FullRoundPaysRewardsBondsAndThePotExactly() public {
        uint256 id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        truth[0] = 6000;
        truth[1] = 2000;
        truth[2] = 50; // below min gain: rejected, half the bond forfeited
        truth[3] = Scores.INVALID; // whole bond forfeited
        truth[4] = 4000;
        address[] memory seats = submit(id, 6, 6); // submission 5 never revealed
        scoreRound(id);
        assertTrue(m.phaseOf(id) == ICoDreamMarket.Phase.Appeal, "the appeal window follows the score reveal");
        toSettlement(id);
        settleAll(id, 2);

        (ICoDreamMarket.Status st0, int32 r0) = status(id, 0);
        assertTrue(st0 == ICoDreamMarket.Status.Accepted && r0 == 6000, "s0 accepted at 6000");
        (ICoDreamMarket.Status st2,) = status(id, 2);
        assertTrue(st2 == ICoDreamMarket.Status.Rejected, "s2 rejected");
        (ICoDreamMarket.Status st3,) = status(id, 3);
        assertTrue(st3 == ICoDreamMarket.Status.Invalid, "s3 invalid");
        (ICoDreamMarket.Status st5,) = status(id, 5);
        assertTrue(st5 == ICoDreamMarket.Status.Unrevealed, "s5 unrevealed");
        assertTrue(_owner(id, 0).verdict == ICoDreamMarket.Verdict.Good, "the owner's eval set was judged OK");

        // miner pot 0.9 ether pro rata to 6000 : 2000 : 4000
        assertEq(m.claimable(actor(100)), 0.45 ether + BOND, "s0 reward + bond");
        assertEq(m.claimable(actor(101)), 0.15 ether + BOND, "s1 reward + bond");
        assertEq(m.claimable(actor(102)), BOND / 2, "s2 half bond");
        assertEq(m.claimable(actor(103)), 0, "s3 nothing");
        assertEq(m.claimable(actor(104)), 0.3 ether + BOND, "s4 reward + bond");
        assertEq(m.claimable(actor(105)), 0, "s5 nothing");
        assertEq(m.claimable(actor(0)), 0, "owner: every accepted wei was paid");

        // pot = fee + forfeits, pro rata to agreements: 5 owner verdicts + 5 submissions x 5 seats
        uint256 pot = 0.1 ether + BOND / 2 + BOND + BOND;
        uint256 totalAgree;
        for (uint256 j; j < 5; ++j) {
            ICoDreamMarket.Seat memory se = m.seat(id, j);
            assertEq(se.disagree, 0, "honest seats never disagree");
            totalAgree += se.agree;
        }
        assertEq(totalAgree, 5 + 5 * 5, "agreements");
        uint256 paid;
        for (uint256 i; i < verifiers.length; ++i) paid += m.claimable(verifiers[i]);
        assertLe(pot - paid, 5, "the pot is paid to the seats but for rounding dust");
        assertEq(m.burned(), pot - paid, "the dust is burned");
        for (uint256 j; j < 5; ++j) assertEq(reg.info(seats[j]).lockedSeats, 0, "unlocked");
        assertEq(m.getTask(id).escrow, 0, "escrow empty");
        assertBooks();
    }

    function test_MajorityDecidesAndSilenceCounts() public {
        uint256 id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        truth[0] = 4000;
        truth[1] = 4000;
        submit(id, 2, 0);
        mode[0] = Mode.Invalid;
        mode[1] = Mode.Invalid; // two INVALID, three honest: the honest majority wins
        scoreRound(id);
        toSettlement(id);
        settleAll(id, 100);
        (ICoDreamMarket.Status st, int32 r) = status(id, 0);
        assertTrue(st == ICoDreamMarket.Status.Accepted && r == 4000, "minority INVALID cannot force INVALID");
        ICoDreamMarket.Seat memory s0 = m.seat(id, 0);
        assertTrue(s0.agree == 1 && s0.disagree == 2, "INVALID seat agreed on the owner, disagreed twice");
        assertEq(m.burned(), 2 * m.SEAT_SLASH() + _dust(id), "the two faulty seats' slashes are burned");
        assertBooks();
    }

    /// what the Refund stage burned as rounding dust
    function _dust(uint256 id) internal view returns (uint256) {
        ICoDreamMarket.Settlement memory st = m.getSettlement(id);
        return st.pot - st.potPaid + (st.funded - st.funded / 10 - st.minersPaid);
    }

    function test_NoMajorityIsRefundedNeverHarvested() public {
        uint256 id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        truth[0] = 4000;
        submit(id, 1, 0);
        mode[0] = Mode.Invalid;
        mode[1] = Mode.Invalid;
        mode[2] = Mode.Silent;
        mode[3] = Mode.Silent;
        mode[4] = Mode.Silent;
        scoreRound(id);
        toSettlement(id);
        settleAll(id, 100);
        (ICoDreamMarket.Status st,) = status(id, 0);
        assertTrue(st == ICoDreamMarket.Status.Unresolved, "2 of 5 is no majority");
        assertTrue(_owner(id, 0).verdict == ICoDreamMarket.Verdict.Unjudged, "2 OK votes of 5 seats: unjudged");
        assertEq(m.claimable(actor(100)), BOND, "unjudged: the bond back, no share (v2 paid the whole pot)");
        assertEq(m.claimable(actor(0)), 1 ether, "nothing judged: the owner gets its bounty back");
        assertEq(m.burned(), 3 * m.SEAT_SLASH(), "the silent seats' slashes are burned");
        for (uint256 i; i < verifiers.length; ++i) assertEq(m.claimable(verifiers[i]), 0, "no seat earned");
        assertBooks();
    }

    function test_FailedRoundWithoutEvalBurnsTheOwnerAndRefundsEveryBond() public {
        uint256 id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        for (uint256 i; i < 3; ++i) commitAs(actor(100 + i), id, cidOf(actor(100 + i), i));
        toEval(id);
        assertTrue(m.phaseOf(id) == ICoDreamMarket.Phase.EvalReveal, "eval reveal right after the commit window");
        toEvalEnd(id);
        assertTrue(m.phaseOf(id) == ICoDreamMarket.Phase.AwaitingSettlement, "no eval: settle");
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.WrongPhase.selector, id, ICoDreamMarket.Phase.Reveal,
            ICoDreamMarket.Phase.AwaitingSettlement));
        revealAs(actor(100), id, 0, cidOf(actor(100), 0)); // no bundle ever becomes public
        settleAll(id, 1);
        assertTrue(_owner(id, 0).verdict == ICoDreamMarket.Verdict.Faulty, "never revealed: faulty");
        assertEq(m.claimable(actor(0)), 0, "the withholding owner gets nothing back");
        assertEq(m.burned(), 1 ether, "its contribution is burned");
        assertEq(m.getTask(id).escrow, 3 * BOND, "the bonds wait for their committers");
        (ICoDreamMarket.Status st,) = status(id, 1);
        assertTrue(st == ICoDreamMarket.Status.Unrevealed, "not revealed");
        for (uint256 i; i < 3; ++i) reclaimAs(actor(100 + i), id, i, cidOf(actor(100 + i), i));
        for (uint256 i; i < 3; ++i) assertEq(m.claimable(actor(100 + i)), BOND, "every bond back");
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.AlreadyRevealed.selector, id, 0));
        reclaimAs(actor(100), id, 0, cidOf(actor(100), 0));
        assertEq(m.getTask(id).escrow, 0, "escrow empty");
        assertBooks();
    }

    function test_NoCommitteeByTheTimeoutRefundsTheOwnersAndEveryBond() public {
        uint256 id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        join(id, actor(1), 0.5 ether);
        commitAs(actor(100), id, cidOf(actor(100), 0));
        toEval(id);
        revealEvalAs(id, 0); // owner 1 never reveals: faulty
        toEvalEnd(id);
        assertTrue(m.phaseOf(id) == ICoDreamMarket.Phase.AwaitingDraw, "one eval set is enough to draw");
        vm.warp(uint256(m.getTask(id).evalRevealEnd) + P.drawTimeout + 1);
        settleAll(id, 1);
        assertEq(m.claimable(actor(0)), 1 ether, "owner 0 revealed: refunded in full");
        assertEq(m.claimable(actor(1)), 0, "owner 1 never revealed: burned");
        assertEq(m.burned(), 0.5 ether, "burned");
        reclaimAs(actor(100), id, 0, cidOf(actor(100), 0));
        assertEq(m.claimable(actor(100)), BOND, "the bond back");
        assertBooks();
    }

    function test_NoSubmissionRefundsEveryOwner() public {
        uint256 id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        join(id, actor(1), 3 ether);
        toEval(id);
        assertTrue(m.phaseOf(id) == ICoDreamMarket.Phase.AwaitingSettlement, "nothing committed: a refund");
        settleAll(id, 1);
        assertEq(m.claimable(actor(0)), 1 ether, "owner 0");
        assertEq(m.claimable(actor(1)), 3 ether, "owner 1");
        assertEq(m.burned(), 0, "nothing happened, nothing burned");
        assertBooks();
    }

    function test_CoOwnersPayAMinimumAndAreAtMostEight() public {
        uint256 id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        vm.deal(actor(1), 1 ether);
        vm.prank(actor(1));
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.ContributionTooLow.selector, 0.1 ether, 1));
        m.joinTask{value: 1}(id, evalCommitment(actor(1)), ACC);
        for (uint256 i = 1; i < 8; ++i) join(id, actor(i), 0.1 ether);
        vm.deal(actor(8), 1 ether);
        vm.prank(actor(8));
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.TooManyOwners.selector, 8));
        m.joinTask{value: 0.1 ether}(id, evalCommitment(actor(8)), ACC);
        vm.prank(actor(1));
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.BadAccuracy.selector, 10_001));
        m.joinTask{value: 0.1 ether}(id, evalCommitment(actor(1)), 10_001);
        uint256 small = newTask(actor(0), 0.05 ether, 5, 5, 100, 150, 1000);
        vm.deal(actor(9), 1 ether);
        vm.prank(actor(9));
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.ContributionTooLow.selector, 0.01 ether, 0.001 ether));
        m.joinTask{value: 0.001 ether}(small, evalCommitment(actor(9)), ACC); // the constant floor
    }

    function test_AFaultyCoOwnerIsBurnedAndTheGoodOwnerFundsTheRound() public {
        uint256 id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        join(id, actor(1), 0.5 ether);
        evalVote[1] = Scores.EVAL_FAILED; // every seat finds owner 1's eval set fails its checks
        truth[0] = 5000;
        submit(id, 1, 0);
        scoreRound(id);
        toSettlement(id);
        settleAll(id, 100);
        assertTrue(_owner(id, 1).verdict == ICoDreamMarket.Verdict.Faulty, "owner 1 faulty");
        assertTrue(_owner(id, 0).verdict == ICoDreamMarket.Verdict.Good, "owner 0 good");
        ICoDreamMarket.Settlement memory st = m.getSettlement(id);
        assertEq(st.funded, 1 ether, "only the good owner funds the round");
        assertEq(m.claimable(actor(100)), 0.9 ether + BOND, "the miner: 90 % of the funded bounty");
        assertEq(m.claimable(actor(1)), 0, "the faulty co-owner gets nothing");
        assertLe(0.5 ether, m.burned(), "its contribution is burned");
        assertBooks();
    }

    function test_AnUnjudgedOwnerFundsTheRoundAndSharesTheRefund() public {
        uint256 id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        join(id, actor(1), 1 ether);
        truth[0] = 50; // rejected: the miner pot goes back to the owners
        submit(id, 1, 0);
        int32[][] memory vs = new int32[][](5);
        for (uint256 j; j < 5; ++j) {
            vs[j] = vectorOf(id, j);
            if (j < 2) vs[j][1] = Scores.EVAL_UNAVAILABLE; // 2 not-OK, 2 OK, 1 silent: no majority
        }
        mode[4] = Mode.Silent;
        scoreVectors(id, vs);
        toSettlement(id);
        settleAll(id, 100);
        assertTrue(_owner(id, 1).verdict == ICoDreamMarket.Verdict.Unjudged, "no majority: unjudged");
        assertEq(m.getSettlement(id).funded, 2 ether, "both fund the round");
        assertEq(m.claimable(actor(0)), m.claimable(actor(1)), "equal contributions, equal refunds");
        assertEq(m.claimable(actor(0)), 0.9 ether, "half of the miner pot each");
        assertBooks();
    }

    function test_ASeatVotingAgainstAnOwnerVerdictIsFaulty() public {
        uint256 id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        truth[0] = 5000;
        submit(id, 1, 0);
        int32[][] memory vs = new int32[][](5);
        for (uint256 j; j < 5; ++j) vs[j] = vectorOf(id, j);
        vs[3][0] = Scores.EVAL_FAILED;
        scoreVectors(id, vs);
        toSettlement(id);
        settleAll(id, 100);
        ICoDreamMarket.Seat memory s3 = m.seat(id, 3);
        assertTrue(s3.disagree == 1 && s3.agree == 1, "outvoted on the owner, agreed on the submission");
        assertTrue(reg.stakeOf(m.seat(id, 3).verifier) < 1 ether, "the seat's verifier was slashed");
        assertBooks();
    }

    function test_SlashesAreBurnedNeverPaidToTheMajority() public {
        uint256 id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        truth[0] = 4000;
        submit(id, 1, 0);
        mode[2] = Mode.Lazy; // 5000 vs 4000: outside tolerance
        scoreRound(id);
        toSettlement(id);
        settleAll(id, 100);
        ICoDreamMarket.Settlement memory st = m.getSettlement(id);
        assertEq(st.pot, 0.1 ether, "the pot is the fee alone: no slash in it");
        assertEq(st.totalAgree, 4 * 2, "four honest seats, each agreed on the owner and the submission");
        assertEq(m.burned(), m.SEAT_SLASH(), "the lazy seat's slash is burned");
        assertBooks();
    }

    function test_NoSeatEarnedTheFeeGoesBackAndForfeitsAreBurned() public {
        uint256 id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        for (uint256 j; j < 5; ++j) mode[j] = Mode.Silent;
        submit(id, 2, 2); // submission 1 never revealed: its bond is forfeited
        scoreRound(id);
        toSettlement(id);
        settleAll(id, 100);
        assertEq(m.claimable(actor(0)), 1 ether, "no judgement: miner pot and fee back to the owner");
        assertEq(m.claimable(actor(100)), BOND, "the unjudged submission's bond back");
        assertEq(m.burned(), BOND + 5 * m.SEAT_SLASH(), "the forfeited bond and the silent seats' slashes burned");
        assertBooks();
    }

    function test_ASubmissionScoredOnlyByItsOwnMinerGetsItsBondAndNoShare() public {
        address v = verifiers[0];
        for (uint256 i = 1; i < 5; ++i) {
            vm.prank(verifiers[i]);
            reg.requestUnbond(); // only v stays eligible
        }
        vm.roll(block.number + 1);
        uint256 id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        truth[0] = 5000;
        truth[1] = 9999; // what v would like its own junk to score
        commitAs(actor(100), id, "bafyhonest");
        commitAs(v, id, "bafyjunk");
        toEval(id);
        revealEvalAs(id, 0);
        address[] memory seats = draw(id);
        for (uint256 j; j < 5; ++j) assertEq(seats[j], v, "v holds every seat");
        revealAs(actor(100), id, 0, "bafyhonest");
        revealAs(v, id, 1, "bafyjunk");
        toScoreCommit(id);
        scoreRound(id);
        toSettlement(id);
        settleAll(id, 3);
        (ICoDreamMarket.Status st1, int32 r1) = status(id, 1);
        assertTrue(st1 == ICoDreamMarket.Status.Unscored && r1 == Scores.NO_EVAL, "unscored");
        assertEq(m.claimable(actor(100)), 0.9 ether + BOND, "the honest miner gets the whole miner pot");
        assertEq(m.claimable(v), 0.1 ether + BOND, "v: the fee for judging, its own bond back, no share");
        assertBooks();
    }

    function test_PhasesRunInTheV3Order() public {
        uint256 id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        commitAs(actor(100), id, cidOf(actor(100), 0));
        vm.prank(actor(0));
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.WrongPhase.selector, id, ICoDreamMarket.Phase.EvalReveal,
            ICoDreamMarket.Phase.Commit));
        m.revealEval(id, 0, evalCid(actor(0)), EVAL_SALT);
        toEval(id);
        vm.deal(actor(101), 1 ether);
        vm.prank(actor(101));
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.WrongPhase.selector, id, ICoDreamMarket.Phase.Commit,
            ICoDreamMarket.Phase.EvalReveal));
        m.commit{value: BOND}(id, bytes32(uint256(1)));
        revealEvalAs(id, 0);
        assertTrue(m.phaseOf(id) == ICoDreamMarket.Phase.AwaitingDraw, "every owner revealed: draw");
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.WrongPhase.selector, id, ICoDreamMarket.Phase.Reveal,
            ICoDreamMarket.Phase.AwaitingDraw));
        revealAs(actor(100), id, 0, cidOf(actor(100), 0));
        draw(id);
        assertTrue(m.phaseOf(id) == ICoDreamMarket.Phase.Reveal, "the committee is drawn before any bundle is public");
        revealAs(actor(100), id, 0, cidOf(actor(100), 0));
        toScoreCommit(id);
        assertTrue(m.phaseOf(id) == ICoDreamMarket.Phase.ScoreCommit, "score commit");
        warpPast(m.getTask(id).scoreCommitEnd);
        assertTrue(m.phaseOf(id) == ICoDreamMarket.Phase.ScoreReveal, "score reveal");
        warpPast(m.getTask(id).scoreRevealEnd);
        assertTrue(m.phaseOf(id) == ICoDreamMarket.Phase.Appeal, "appeal");
        toSettlement(id);
        assertTrue(m.phaseOf(id) == ICoDreamMarket.Phase.AwaitingSettlement, "settle");
    }

    function test_TheScoreCommitWindowGrowsWithTheBusiestSeatsWork() public {
        uint256 id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        for (uint256 i; i < 200; ++i) commitAs(actor(100 + i), id, cidOf(actor(100 + i), i));
        toEval(id);
        revealEvalAs(id, 0);
        draw(id);
        ICoDreamMarket.Task memory t = m.getTask(id);
        // r x ceil(N / K) = 5 x 40 = 200 bundles for every seat (r = K)
        assertEq(t.scoreCommitEnd - t.revealEnd, P.minWindow + P.secondsPerBundle * 200, "extended window");
        assertEq(t.appealEnd - t.scoreRevealEnd, P.appealWindow, "appeal window");
    }

    /// any mix of seat behaviours, owner verdicts and unrevealed submissions ends final with every
    /// wei claimable or burned, no seat locked, and no owner credited more than it paid
    function testFuzz_AnyRoundEndsWithEveryWeiAccounted(uint256 seed) public {
        uint8 k = uint8(bound(seed, 5, 9));
        uint8 r = uint8(5 + 2 * bound(seed >> 8, 0, (k - 5) / 2));
        uint256 n = bound(seed >> 16, 1, 12);
        uint256 bounty = bound(seed >> 24, 1, 3 ether);
        uint256 id = newTask(actor(0), bounty, k, r, int16(int256(bound(seed >> 64, 0, 600))),
            uint16(bound(seed >> 80, 0, 300)), uint16(bound(seed >> 96, 0, 5000)));
        uint256 owners = bound(seed >> 180, 1, 3);
        uint256[] memory paid = new uint256[](owners);
        paid[0] = bounty;
        for (uint256 i = 1; i < owners; ++i) {
            paid[i] = m.CO_OWNER_MIN() + bounty / 10 + bound(seed >> (190 + i), 0, 1 ether);
            join(id, actor(i), paid[i]);
            evalVote[i] = int32(int256(1 + uint256(keccak256(abi.encode(seed, "vote", i))) % 3));
        }
        for (uint256 s; s < n; ++s) {
            uint256 h = uint256(keccak256(abi.encode(seed, s)));
            truth[s] = h % 5 == 0 ? Scores.INVALID : int32(int256(h % 8000)) - 1000;
        }
        uint256 every = bound(seed >> 112, 0, 4); // 0: all revealed, else every j-th is never revealed
        submit(id, n, every == 1 ? 2 : every);
        for (uint256 j; j < k; ++j) mode[j] = Mode(uint8(uint256(keccak256(abi.encode(seed, "mode", j))) % 7));
        scoreRound(id);
        toSettlement(id);
        settleAll(id, bound(seed >> 120, 1, 9));
        assertEq(m.getTask(id).escrow, 0, "escrow left");
        assertBooks();
        uint256 stakes;
        for (uint256 i; i < verifiers.length; ++i) {
            stakes += reg.stakeOf(verifiers[i]);
            assertEq(reg.info(verifiers[i]).lockedSeats, 0, "a seat stayed locked");
        }
        assertEq(address(reg).balance, stakes, "registry balance != stakes");
        for (uint256 i; i < owners; ++i) assertLe(m.claimable(actor(i)), paid[i], "an owner got more than it paid");
    }

    /// issue 22 item 8: co-owned tasks with tiny and odd contributions, 1-6 submissions, random
    /// scores and batch sizes: no owner is ever credited more than it paid (dust is burned)
    function testFuzz_RoundingNeverFavoursAnOwner(uint256 seed) public {
        uint256 bounty = bound(seed, 1, 1000); // the creator: 1..1,000 wei
        uint256 id = newTask(actor(0), bounty, 5, 5, int16(int256(bound(seed >> 10, 0, 3000))), 150,
            uint16(bound(seed >> 30, 0, 5000)));
        uint256 owners = bound(seed >> 50, 1, 4);
        uint256[] memory paid = new uint256[](owners);
        paid[0] = bounty;
        for (uint256 i = 1; i < owners; ++i) {
            paid[i] = m.CO_OWNER_MIN() + bound(seed >> (60 + 10 * i), 1, 1000); // the floor + 1..1,000 wei
            join(id, actor(i), paid[i]);
        }
        uint256 n = bound(seed >> 100, 1, 6);
        for (uint256 s; s < n; ++s) truth[s] = int32(int256(uint256(keccak256(abi.encode(seed, s))) % 9000)) - 500;
        submit(id, n, 0);
        scoreRound(id);
        toSettlement(id);
        settleAll(id, bound(seed >> 140, 1, 7));
        for (uint256 i; i < owners; ++i) assertLe(m.claimable(actor(i)), paid[i], "an owner got more than it paid");
        assertEq(m.getTask(id).escrow, 0, "escrow left");
        assertBooks();
    }
}
