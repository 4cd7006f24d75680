// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICoDreamAppeals} from "../../contracts/interfaces/ICoDreamAppeals.sol";
import {ICoDreamMarket} from "../../contracts/interfaces/ICoDreamMarket.sol";
import {Scores} from "../../contracts/libraries/Scores.sol";
import {MarketBase} from "./MarketBase.sol";

/// Appeals (docs/protocol-v3.md §7): one level, a fresh committee of 2r + 1 seats, majority rule;
/// an overturned majority is slashed in proportion to its stake, the appellant repaid.
contract AppealsTest is MarketBase {
    address[] internal vs;

    function setUp() public override {
        super.setUp();
        vs = activeVerifiers(10, 10, 1 ether);
    }

    /// a task whose committee has 3 distinct verifiers on seats 0-2 and others on 3-4; submission 0
    /// is honest (6000) and the seats 0-2 vote `wrong` on it; ends in the appeal window
    function _wrongMajority(int32 wrong) internal returns (uint256 id, address[] memory seats) {
        id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        commitAs(actor(100), id, cidOf(actor(100), 0));
        toEval(id);
        revealEvalAs(id, 0);
        m.requestDraw(id);
        vm.roll(m.getTask(id).seedBlock);
        bytes32 randao = nextRandao();
        while (!_distinct(seatsFor(id, randao))) randao = nextRandao();
        seats = drawWith(id, randao);
        revealSubmissions(id, 1, 0);
        toScoreCommit(id);
        truth[0] = 6000;
        int32[][] memory v = new int32[][](5);
        for (uint256 j; j < 5; ++j) {
            v[j] = vectorOf(id, j);
            if (j < 3) v[j][1] = wrong;
        }
        scoreVectors(id, v);
    }

    function _distinct(address[] memory seats) internal pure returns (bool) {
        for (uint256 i; i < 3; ++i) for (uint256 j; j < 5; ++j) if (i != j && seats[i] == seats[j]) return false;
        return true;
    }

    function _in(address x, address[] memory xs, uint256 n) internal pure returns (bool) {
        for (uint256 i; i < n; ++i) if (xs[i] == x) return true;
        return false;
    }

    /// appeal seats held by the wrong majority's verifiers vote `wrong`, the others `right`
    function _scoreAppeal(uint256 id, uint256 a, address[] memory wrongOnes, int32 wrong, int32 right)
        internal returns (address[] memory seats)
    {
        seats = drawAppealWith(id, a, nextRandao());
        int32[] memory scores = new int32[](seats.length);
        for (uint256 j; j < seats.length; ++j) scores[j] = _in(seats[j], wrongOnes, 3) ? wrong : right;
        scoreAppeal(id, a, scores, new bool[](seats.length));
    }

    uint256[3] internal stakesBefore;

    function test_AnAppealOverturnsAWrongMajorityAndSlashesIt() public {
        (uint256 id, address[] memory seats) = _wrongMajority(Scores.INVALID);
        assertTrue(lens.judge(id, 0).status == ICoDreamMarket.Status.Invalid, "the majority says INVALID");
        for (uint256 i; i < 3; ++i) stakesBefore[i] = reg.stakeOf(seats[i]);
        address appellant = seats[3];
        uint256 deposit = ap.depositFor(id);
        assertEq(deposit, 0.1 ether, "10 % of the bounty");
        uint256 a = appealAs(appellant, id, 0);
        assertTrue(m.phaseOf(id) == ICoDreamMarket.Phase.Appeal, "appeal");
        assertEq(_scoreAppeal(id, a, seats, 6000, 6000).length, 11, "2r + 1 seats (an honest appeal committee)");
        uint256 claimBefore = m.claimable(appellant);
        uint256 burnedBefore = m.burned();
        resolveAll(id, a);
        _checkOverturned(id, a, seats);
        uint256 slashed = 3 * 0.1 ether; // each overturned seat: 10 % of its verifier's 1 ETH (>= 0.1 ETH)
        assertEq(m.claimable(appellant) - claimBefore, deposit + slashed / 2, "deposit back + half the slashes");
        assertEq(m.burned() - burnedBefore, slashed / 2, "the other half is burned");
        toSettlement(id);
        settleAll(id, 100);
        (ICoDreamMarket.Status st, int32 r) = status(id, 0);
        assertTrue(st == ICoDreamMarket.Status.Accepted && r == 6000, "settled on the appeal's result");
        assertEq(m.claimable(actor(100)), 0.9 ether + BOND, "the honest miner is paid");
        for (uint256 j = 3; j < 5; ++j) assertEq(m.seat(id, j).disagree, 0, "outvoted but right: not faulty");
        for (uint256 j; j < 3; ++j) assertEq(m.seat(id, j).disagree, 1, "the overturned majority is faulty");
        assertBooks();
    }

    function _checkOverturned(uint256 id, uint256 a, address[] memory seats) internal view {
        ICoDreamAppeals.Appeal memory x = ap.getAppeal(id, a);
        assertTrue(x.outcome == ICoDreamAppeals.Outcome.Overturned, "overturned");
        assertTrue(x.result == 6000 && x.original == Scores.INVALID, "results");
        for (uint256 i; i < 3; ++i) assertEq(stakesBefore[i] - reg.stakeOf(seats[i]), 0.1 ether, "slashed 0.1 ETH");
    }

    function test_AConfirmedAppealPaysTheAgreeingAppealSeats() public {
        (uint256 id,) = _wrongMajority(6050); // within tolerance: a fair majority
        address appellant = actor(50);
        uint256 deposit = ap.depositFor(id);
        uint256 a = appealAs(appellant, id, 0);
        address[] memory aseats = drawAppealWith(id, a, nextRandao());
        int32[] memory scores = new int32[](aseats.length);
        for (uint256 j; j < aseats.length; ++j) scores[j] = 6000;
        scoreAppeal(id, a, scores, new bool[](aseats.length));
        uint256[] memory claimBefore = new uint256[](vs.length);
        for (uint256 i; i < vs.length; ++i) claimBefore[i] = m.claimable(vs[i]);
        resolveAll(id, a);
        assertTrue(ap.getAppeal(id, a).outcome == ICoDreamAppeals.Outcome.Confirmed, "confirmed");
        uint256 paid;
        for (uint256 i; i < vs.length; ++i) paid += m.claimable(vs[i]) - claimBefore[i];
        assertLe(deposit - paid, 11, "the deposit went to the 11 agreeing appeal seats (dust burned)");
        assertEq(m.claimable(appellant), 0, "the appellant lost its deposit");
        toSettlement(id);
        settleAll(id, 100);
        assertBooks();
    }

    function test_AnAppealWithoutCommitteeOrMajorityIsVoid() public {
        (uint256 id,) = _wrongMajority(Scores.INVALID);
        address appellant = actor(50);
        uint256 deposit = ap.depositFor(id);
        uint256 a = appealAs(appellant, id, 0);
        warpPast(ap.getAppeal(id, a).drawDeadline); // nobody drew the appeal committee
        vm.expectRevert(abi.encodeWithSelector(ICoDreamAppeals.AppealDrawClosed.selector, ap.getAppeal(id, a).drawDeadline));
        ap.drawAppeal(id, a);
        resolveAll(id, a);
        assertTrue(ap.getAppeal(id, a).outcome == ICoDreamAppeals.Outcome.Void, "void");
        assertEq(m.claimable(appellant), deposit, "deposit back");
        assertTrue(m.phaseOf(id) == ICoDreamMarket.Phase.AwaitingSettlement, "the window is over");
        toSettlement(id);
        settleAll(id, 100);
        (ICoDreamMarket.Status st,) = status(id, 0);
        assertTrue(st == ICoDreamMarket.Status.Invalid, "the original result stands");
        assertBooks();
    }

    function test_SilentAppealSeatsAreSlashedAndTheAppealIsVoid() public {
        (uint256 id,) = _wrongMajority(Scores.INVALID);
        uint256 a = appealAs(actor(50), id, 0);
        address[] memory aseats = drawAppealWith(id, a, nextRandao());
        bool[] memory silent = new bool[](aseats.length);
        for (uint256 j; j < aseats.length; ++j) silent[j] = true;
        scoreAppeal(id, a, new int32[](aseats.length), silent);
        uint256 burnedBefore = m.burned();
        resolveAll(id, a);
        assertTrue(ap.getAppeal(id, a).outcome == ICoDreamAppeals.Outcome.Void, "no majority: void");
        assertEq(m.burned() - burnedBefore, 11 * m.SEAT_SLASH(), "every silent appeal seat slashed, burned");
        toSettlement(id);
        settleAll(id, 100);
        for (uint256 i; i < vs.length; ++i) assertEq(reg.info(vs[i]).lockedSeats, 0, "every seat unlocked");
        assertBooks();
    }

    function test_AppealSeatsAgainstTheAppealMajorityAreFaulty() public {
        (uint256 id, address[] memory seats) = _wrongMajority(Scores.INVALID);
        uint256 a = appealAs(seats[3], id, 0);
        address[] memory aseats = drawAppealWith(id, a, nextRandao());
        int32[] memory scores = new int32[](aseats.length);
        for (uint256 j; j < aseats.length; ++j) scores[j] = j == 0 ? int32(-3000) : int32(6000);
        scoreAppeal(id, a, scores, new bool[](aseats.length));
        uint256 before = reg.stakeOf(aseats[0]);
        resolveAll(id, a);
        assertTrue(reg.stakeOf(aseats[0]) < before, "the outlier appeal seat is slashed");
        toSettlement(id);
        settleAll(id, 100);
        assertBooks();
    }

    function test_AnAppealJudgesAnUnresolvedSubmission() public {
        uint256 id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        truth[0] = 6000;
        submit(id, 1, 0);
        mode[0] = Mode.Silent;
        mode[1] = Mode.Silent;
        mode[2] = Mode.Silent; // 2 of 5 revealed: no majority
        scoreRound(id);
        assertTrue(lens.judge(id, 0).status == ICoDreamMarket.Status.Unresolved, "stalled");
        uint256 a = appealAs(actor(100), id, 0); // the miner itself appeals
        address[] memory aseats = drawAppealWith(id, a, nextRandao());
        int32[] memory scores = new int32[](aseats.length);
        for (uint256 j; j < aseats.length; ++j) scores[j] = 6000;
        scoreAppeal(id, a, scores, new bool[](aseats.length));
        resolveAll(id, a);
        assertTrue(ap.getAppeal(id, a).outcome == ICoDreamAppeals.Outcome.Overturned, "judged now");
        toSettlement(id);
        settleAll(id, 100);
        (ICoDreamMarket.Status st,) = status(id, 0);
        assertTrue(st == ICoDreamMarket.Status.Accepted, "accepted on appeal");
        assertEq(m.claimable(actor(100)), 0.9 ether + BOND + ap.depositFor(id), "paid, deposit back");
        assertBooks();
    }

    function test_AppealRules() public {
        uint256 id = newTask(actor(0), 1 ether, 5, 5, 100, 150, 1000);
        truth[0] = 6000;
        for (uint256 i; i < 20; ++i) commitAs(actor(100 + i), id, cidOf(actor(100 + i), i));
        toEval(id);
        revealEvalAs(id, 0);
        draw(id);
        revealSubmissions(id, 20, 20); // submission 19 never revealed
        uint256 d = ap.depositFor(id);
        vm.deal(actor(50), 100 ether);
        vm.prank(actor(50));
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.WrongPhase.selector, id, ICoDreamMarket.Phase.Appeal,
            ICoDreamMarket.Phase.Reveal));
        ap.appeal{value: d}(id, 0); // not before the score reveal closed
        toScoreCommit(id);
        scoreRound(id);
        vm.startPrank(actor(50));
        vm.expectRevert(abi.encodeWithSelector(ICoDreamAppeals.NotRevealed.selector, id, 19));
        ap.appeal{value: d}(id, 19);
        vm.expectRevert(abi.encodeWithSelector(ICoDreamAppeals.WrongDeposit.selector, d, d - 1));
        ap.appeal{value: d - 1}(id, 0);
        ap.appeal{value: d}(id, 0);
        vm.expectRevert(abi.encodeWithSelector(ICoDreamAppeals.AlreadyAppealed.selector, id, 0));
        ap.appeal{value: d}(id, 0);
        for (uint256 s = 1; s < 16; ++s) ap.appeal{value: d}(id, s);
        vm.expectRevert(abi.encodeWithSelector(ICoDreamAppeals.TooManyAppeals.selector, 16));
        ap.appeal{value: d}(id, 16);
        vm.stopPrank();
        warpPast(m.getTask(id).appealEnd);
        assertTrue(m.phaseOf(id) == ICoDreamMarket.Phase.Appeal, "settlement waits for open appeals");
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.WrongPhase.selector, id,
            ICoDreamMarket.Phase.AwaitingSettlement, ICoDreamMarket.Phase.Appeal));
        m.settle(id, 10);
        vm.prank(actor(50));
        vm.expectRevert(abi.encodeWithSelector(ICoDreamAppeals.AppealWindowClosed.selector, m.getTask(id).appealEnd));
        ap.appeal{value: d}(id, 17);
        warpPast(ap.getAppeal(id, 15).drawDeadline);
        for (uint256 a; a < 16; ++a) resolveAll(id, a);
        assertEq(m.claimable(actor(50)), 16 * d, "no committee drawn: every deposit back");
        settleAll(id, 1000);
        assertBooks();
    }
}
