// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICoDreamMarket} from "../../contracts/interfaces/ICoDreamMarket.sol";
import {IStakeRegistry} from "../../contracts/interfaces/IStakeRegistry.sol";
import {ProtocolParams} from "../../contracts/libraries/ProtocolParams.sol";
import {MarketBase} from "./MarketBase.sol";

/// Randomness (no builder grinding, no free re-roll), stake warm-up, parameter floors and
/// ceilings, and EIP-170 (docs/protocol-v3.md §2-4).
contract DrawTest is MarketBase {
    address[] internal vs;

    function setUp() public override {
        super.setUp();
        vs = activeVerifiers(10, 5, 1 ether);
    }

    function _ready() internal returns (uint256 id) {
        id = newTask(actor(0), 1 ether, 15, 5, 100, 150, 1000);
        commitAs(actor(100), id, cidOf(actor(100), 0));
        toEval(id);
        revealEvalAs(id, 0);
    }

    function test_TheDrawUsesThePrevrandaoOfTheBlockItLandsIn() public {
        uint256 id = _ready();
        m.requestDraw(id);
        ICoDreamMarket.Task memory t = m.getTask(id);
        vm.roll(t.seedBlock);
        vm.setBlockhash(t.seedBlock - 1, keccak256("a builder's chosen hash")); // no effect any more
        bytes32 randao = keccak256("the beacon chain's mix");
        address[] memory expected = seatsFor(id, randao);
        vm.prevrandao(randao);
        m.drawCommittee(id);
        (address[] memory seats,,) = lens.getSeats(id);
        for (uint256 j; j < seats.length; ++j) assertEq(seats[j], expected[j], "seat");
        assertTrue(m.getTask(id).seed == keccak256(abi.encode(randao, id, uint256(t.snapshotBlock))), "seed exposed");
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.WrongPhase.selector, id,
            ICoDreamMarket.Phase.AwaitingDraw, ICoDreamMarket.Phase.Reveal));
        m.drawCommittee(id); // a second call in the same block: no second draw
    }

    function test_NoFreeReRollAndTheSnapshotStays() public {
        address whale = actor(40);
        stakeAs(whale, 100 ether); // it will be warm a few hours into the round
        vm.warp(block.timestamp + P.warmup - 3 hours);
        uint256 id = _ready();
        m.requestDraw(id);
        ICoDreamMarket.Task memory t = m.getTask(id);
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.SeedNotReached.selector, t.seedBlock));
        m.drawCommittee(id);
        uint256 last = t.seedBlock + m.DRAW_WINDOW_BLOCKS();
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.DrawPending.selector, id, last));
        m.requestDraw(id); // no re-roll while a draw window is open
        vm.warp(reg.pendingOf(whale).activatesAt);
        reg.activate(whale);
        vm.roll(last + 1);
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.DrawWindowMissed.selector, last));
        m.drawCommittee(id);
        m.requestDraw(id); // the window passed: a re-request, the same snapshot
        assertEq(m.getTask(id).snapshotBlock, t.snapshotBlock, "the snapshot stays");
        address[] memory seats = draw(id);
        for (uint256 j; j < seats.length; ++j) assertTrue(seats[j] != whale, "a stake activated after the snapshot holds no seat");
    }

    /// the residual choice: a builder with a share f of the blocks leaves the draw out of its own
    /// blocks unless it captures; P(capture) = q / (1 - f (1 - q)) (q: one draw's capture chance)
    function test_BuilderCensoringMatchesTheFormula() public {
        uint256 id = _ready(); // K = 15, r = 5; the attacker actor(10) holds 20 % of the stake
        m.requestDraw(id);
        ICoDreamMarket.Task memory t = m.getTask(id);
        uint256 total = reg.totalAt(t.snapshotBlock);
        uint256 trials = 1500;
        uint256 f = 3; // f = 3/10
        uint256 captures;
        uint256 oneDraw;
        for (uint256 i; i < trials; ++i) {
            for (uint256 b; b <= m.DRAW_WINDOW_BLOCKS(); ++b) {
                bytes32 randao = keccak256(abi.encode("mix", i, b));
                bool captured = _captures(id, randao, t.snapshotBlock, total);
                if (b == 0 && captured) ++oneDraw;
                bool attackers = uint256(keccak256(abi.encode("builder", i, b))) % 10 < f;
                if (attackers && !captured) continue;
                if (captured) ++captures;
                break;
            }
        }
        // q from the binomial at p = 1/5, r = 5: P(>= 3 of 5) = 0.05792; formula at f = 0.3: 0.0747
        uint256 qBps = 579;
        uint256 formulaBps = qBps * 10_000 / (10_000 - f * (10_000 - qBps) / 10);
        log(string.concat("one draw: ", _u(oneDraw * 10_000 / trials), " bps (binomial 579); censoring builder f=0.3: ",
            _u(captures * 10_000 / trials), " bps (formula ", _u(formulaBps), ")"));
        // 4 standard deviations of a proportion near 0.07 over 1,500 trials: ~265 bps
        assertLe(captures * 10_000 / trials, formulaBps + 265, "capture above the formula");
        assertLe(formulaBps, captures * 10_000 / trials + 265, "capture below the formula");
    }

    /// submission 0's seats are 0..4; the attacker (actor(10), 20 %) holds at least 3 of them
    function _captures(uint256 id, bytes32 randao, uint256 snap, uint256 total) internal view returns (bool) {
        bytes32 seed = keccak256(abi.encode(randao, id, snap));
        uint256 c;
        for (uint256 j; j < 5; ++j) {
            if (reg.sampleAt(snap, uint256(keccak256(abi.encode(seed, j))) % total) == actor(10)) ++c;
        }
        return c >= 3;
    }

    // ------------------------------------------------------------------ warm-up
    function test_NewStakeCountsOnlyAfterTheWarmUp() public {
        address late = actor(40);
        stakeAs(late, 5 ether);
        vm.roll(block.number + 1);
        assertEq(reg.weightAt(late, block.number - 1), 0, "pending stake has no draw weight");
        assertEq(reg.stakeOf(late), 5 ether, "but it is held");
        IStakeRegistry.Pending memory p = reg.pendingOf(late);
        vm.expectRevert(abi.encodeWithSelector(IStakeRegistry.WarmingUp.selector, p.activatesAt, block.timestamp));
        reg.activate(late);
        vm.warp(p.activatesAt);
        reg.activate(late); // anyone may
        vm.roll(block.number + 1);
        assertEq(reg.weightAt(late, block.number - 1), 5 ether, "active");
        stakeAs(late, 1 ether); // a top-up warms up on its own
        vm.roll(block.number + 1);
        assertEq(reg.weightAt(late, block.number - 1), 5 ether, "the top-up does not count yet");
        assertEq(reg.stakeOf(late), 6 ether, "held");
    }

    function test_UnbondingCoversPendingAndActiveAndSlashingReachesBoth() public {
        address v = vs[0];
        stakeAs(v, 0.5 ether); // 1 active + 0.5 pending
        vm.prank(v);
        reg.requestUnbond();
        vm.roll(block.number + 1);
        assertEq(reg.weightAt(v, block.number - 1), 0, "unbonding: no weight");
        vm.expectRevert();
        reg.activate(v); // an unbonding stake is never activated
        vm.warp(block.timestamp + P.unbondingDelay);
        uint256 before = v.balance;
        vm.prank(v);
        reg.withdrawStake();
        assertEq(v.balance - before, 1.5 ether, "active and pending both leave");
    }

    function test_ThePendingStakeWarmsUpLongerThanATasksSpan() public view {
        ICoDreamMarket.Params memory p = m.params();
        uint256 span = uint256(p.maxCommitWindow) + p.maxEvalWindow + p.drawTimeout + 3 * uint256(p.maxLockWindow)
            + p.appealWindow + p.drawTimeout;
        assertTrue(p.warmup > span, "warm-up longer than creation to the last appeal draw");
        assertEq(reg.WARMUP(), p.warmup, "the registry's warm-up");
        assertEq(reg.UNBONDING_DELAY(), p.unbondingDelay, "the registry's unbonding delay");
    }

    // ------------------------------------------------------------------ parameters
    function test_ProductionParametersAndTheirChecks() public {
        ICoDreamMarket.Params memory p = m.params();
        ICoDreamMarket.Params memory q = ProtocolParams.production();
        assertTrue(keccak256(abi.encode(p)) == keccak256(abi.encode(q)), "deployed with the production parameters");
        assertEq(p.minWindow, 1 hours, "min window");
        assertEq(p.minSeatsPerSubmission, 5, "r floor");
        q.warmup = 7 days;
        vm.expectRevert();
        vm.deployCode("CoDreamMarket.sol:CoDreamMarket", abi.encode(q));
        q = ProtocolParams.production();
        q.minSeatsPerSubmission = 4;
        vm.expectRevert();
        vm.deployCode("CoDreamMarket.sol:CoDreamMarket", abi.encode(q));
        q = ProtocolParams.production();
        q.unbondingDelay = 2 days;
        vm.expectRevert();
        vm.deployCode("CoDreamMarket.sol:CoDreamMarket", abi.encode(q));
    }

    function test_WindowCeilingsAndCommitteeShape() public {
        vm.deal(actor(0), 10 ether);
        vm.startPrank(actor(0));
        uint32[5] memory w = W;
        w[0] = P.maxCommitWindow + 1;
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.BadWindow.selector, 0, w[0], P.minWindow, P.maxCommitWindow));
        m.createTask{value: 1 ether}("bafyspec", evalCommitment(actor(0)), ACC, BOND, 15, 15, 100, 150, 1000, w);
        w = W;
        w[3] = P.maxLockWindow + 1;
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.BadWindow.selector, 3, w[3], P.minWindow, P.maxLockWindow));
        m.createTask{value: 1 ether}("bafyspec", evalCommitment(actor(0)), ACC, BOND, 15, 15, 100, 150, 1000, w);
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.BadSeats.selector, 64, 33, 5, 64));
        m.createTask{value: 1 ether}("bafyspec", evalCommitment(actor(0)), ACC, BOND, 64, 33, 100, 150, 1000, W);
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.BadSeats.selector, 65, 15, 5, 64));
        m.createTask{value: 1 ether}("bafyspec", evalCommitment(actor(0)), ACC, BOND, 65, 15, 100, 150, 1000, W);
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.BadAccuracy.selector, 0));
        m.createTask{value: 1 ether}("bafyspec", evalCommitment(actor(0)), 0, BOND, 15, 15, 100, 150, 1000, W);
        m.createTask{value: 1 ether}("bafyspec", evalCommitment(actor(0)), ACC, BOND, 64, 31, 100, 150, 1000, W);
        vm.stopPrank();
    }

    function test_EveryContractFitsEIP170() public view {
        address[4] memory cs = [address(m), address(ap), address(reg), address(lens)];
        string[4] memory names = ["CoDreamMarket", "CoDreamAppeals", "StakeRegistry", "CoDreamLens"];
        for (uint256 i; i < 4; ++i) {
            uint256 size = cs[i].code.length;
            log(string.concat("GASJSON {\"runtime_bytes_", names[i], "\": ", _u(size), "}"));
            assertLe(size, 24_576, string.concat(names[i], " exceeds EIP-170"));
        }
    }
}
