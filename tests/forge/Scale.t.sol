// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICoDreamAppeals} from "../../contracts/interfaces/ICoDreamAppeals.sol";
import {ICoDreamMarket} from "../../contracts/interfaces/ICoDreamMarket.sol";
import {MarketBase} from "./MarketBase.sol";

/// Scale: 1,024 submissions x 32 seats x r = 5 settle in batches under 5M gas each; the committee
/// draw costs O(log V) in the number of verifiers V; and every keeper call fits a block at the
/// protocol's maxima (K 64, r 31, 4,096 submissions, 8 owners, an appeal of 63 seats) whatever
/// maxItems the caller passes (docs/protocol-v3.md §8).
///
/// Gas is read with `vm.lastCallGas()` after `vm.cool` on the contracts, so storage is priced
/// cold as in a real transaction; accounts stay warm and the 21,000 base cost is added by hand.
/// Under `forge test --isolate` (what `codream bench gas` runs) every call is its own
/// transaction and `lastCallGas` is the transaction's exact gas; the numbers are printed as
/// `GASJSON {...}` lines for the bench.
contract ScaleTest is MarketBase {
    uint256 internal TX; // the 21,000 base cost, unless --isolate already counts it

    function setUp() public override {
        super.setUp();
        // under --isolate a state-changing call is a transaction: its gas includes the base cost
        try reg.requestUnbond() {} catch {}
        TX = vm.lastCallGas().gasTotalUsed >= 21_000 ? 0 : 21_000;
    }

    function _measured() internal view returns (uint256) {
        return vm.lastCallGas().gasTotalUsed + TX;
    }

    function _cool() internal {
        vm.cool(address(m));
        vm.cool(address(reg));
        vm.cool(address(ap));
    }

    /// settles in calls of `batch` items; returns (calls, largest call, total)
    function _settleMeasured(uint256 id, uint256 batch) internal returns (uint256 calls, uint256 maxCall, uint256 total) {
        while (m.phaseOf(id) != ICoDreamMarket.Phase.Finalized) {
            _cool();
            m.settle(id, batch);
            uint256 g = _measured();
            total += g;
            ++calls;
            if (g > maxCall) maxCall = g;
        }
    }

    function test_1024SubmissionsSettleInBatchesUnder5MGas() public {
        bookActors = 1200;
        activeVerifiers(10, 40, 1 ether);
        uint256 id = newTask(actor(0), 10 ether, 32, 5, 100, 150, 1000);
        uint256 n = 1024;
        for (uint256 s; s < n; ++s) truth[s] = int32(int256(200 + (s * 37) % 5000));
        submit(id, n, 16); // every 16th never revealed
        mode[3] = Mode.Low; // one seat under-scores: it disagrees and is slashed
        mode[7] = Mode.Silent; // one seat never reveals: slashed
        scoreRound(id);
        toSettlement(id);
        (uint256 calls, uint256 maxBatch, uint256 total) = _settleMeasured(id, 160);
        assertLe(maxBatch, 5_000_000, "a settlement batch exceeds 5M gas");
        assertLe(total / n, 60_000, "settlement per submission above 60k amortised");
        assertEq(m.getTask(id).escrow, 0, "escrow left");
        (int32[] memory res, ICoDreamMarket.Status[] memory st) = lens.results(id, 0, n);
        for (uint256 s; s < n; ++s) {
            if (s % 16 == 15) {
                assertTrue(st[s] == ICoDreamMarket.Status.Unrevealed, "unrevealed");
            } else {
                assertTrue(st[s] == ICoDreamMarket.Status.Accepted && res[s] == truth[s], "honest result stands");
            }
        }
        assertTrue(m.seat(id, 3).disagree > 0, "the low seat disagreed");
        assertBooks();
        log(string.concat("GASJSON {\"settle_1024x32x5\": {\"calls\": ", _u(calls), ", \"batch_items\": 160",
            ", \"max_batch\": ", _u(maxBatch), ", \"total\": ", _u(total), ", \"per_submission\": ", _u(total / n),
            "}}"));
    }

    /// registers `v` verifiers, each stake and each activation in its own block (so the tree's
    /// nodes carry long histories); returns the gas of the last stake and the last activation
    function _registerVerifiers(uint256 from, uint256 v) internal returns (uint256 stakeGas, uint256 activateGas) {
        for (uint256 i = from; i < v; ++i) {
            address a = address(uint160(0x100000 + i));
            vm.deal(a, 1 ether);
            vm.roll(block.number + 1);
            _cool();
            vm.prank(a);
            reg.stake{value: 0.1 ether + (i % 7) * 0.1 ether}();
            stakeGas = _measured();
        }
        vm.warp(block.timestamp + P.warmup + 1);
        for (uint256 i = from; i < v; ++i) {
            vm.roll(block.number + 1);
            _cool();
            reg.activate(address(uint160(0x100000 + i)));
            activateGas = _measured();
        }
        vm.roll(block.number + 1);
    }

    /// the draw of MAX_SEATS seats
    function _drawAt(uint256 id) internal returns (uint256 drawGas) {
        m.requestDraw(id);
        vm.roll(m.getTask(id).seedBlock);
        vm.prevrandao(nextRandao());
        _cool();
        m.drawCommittee(id);
        drawGas = _measured();
    }

    function _taskReadyToDraw(uint8 k) internal returns (uint256 id) {
        id = newTask(actor(0), 1 ether, k, 5, 100, 150, 1000);
        commitAs(actor(100), id, cidOf(actor(100), id));
        toEval(id);
        revealEvalAs(id, 0);
    }

    function test_DrawCostGrowsLogarithmicallyInVerifiers() public {
        uint8 k = uint8(m.MAX_SEATS());
        (uint256 stake1k, uint256 activate1k) = _registerVerifiers(0, 1000);
        uint256 draw1k = _drawAt(_taskReadyToDraw(k));
        (uint256 stake10k, uint256 activate10k) = _registerVerifiers(1000, 10_000);
        uint256 draw10k = _drawAt(_taskReadyToDraw(k));
        assertEq(reg.verifierCount(), 10_000, "verifiers");
        assertLe(draw10k, 5_000_000, "drawing MAX_SEATS at V = 10,000 exceeds 5M gas");
        // log2(16384) / log2(1024) = 1.4 levels of tree: allow that and nothing near linear (10x)
        assertLe(draw10k * 100, draw1k * 150, "draw cost grows faster than log V");
        log(string.concat("GASJSON {\"draw\": {\"seats\": ", _u(k), ", \"V1000\": ", _u(draw1k), ", \"V10000\": ",
            _u(draw10k), ", \"stake_at_V1000\": ", _u(stake1k), ", \"stake_at_V10000\": ", _u(stake10k),
            ", \"activate_at_V1000\": ", _u(activate1k), ", \"activate_at_V10000\": ", _u(activate10k), "}}"));
    }

    // gas of the maxima test's calls
    uint256 internal gDraw;
    uint256 internal gReveal;
    uint256 internal gAppealDraw;
    uint256 internal gResolve;

    /// K 64, r 31, 4,096 submissions by distinct miners, 8 owners, half the seats faulty (distinct
    /// verifiers: every faulty seat rewrites the sum tree), an appeal of 63 seats, a quarter of
    /// them silent, that overturns 16 seats: every keeper call, with maxItems = 2^256 - 1, stays under
    /// 12M gas (a 30M block), and revealScores of the busiest seat too
    function test_EveryKeeperCallFitsABlockAtTheMaxima() public {
        activeVerifiers(10, 128, 1 ether);
        uint256 id = newTask(actor(0), 8 ether, 64, 31, 100, 150, 1000);
        for (uint256 i = 1; i < 8; ++i) join(id, actor(i), 1 ether);
        uint256 n = m.MAX_SUBMISSIONS();
        _maximaRound(id, n);
        _maximaAppeal(id);
        toSettlement(id);
        (uint256 calls, uint256 settleMax, uint256 total) = _settleMeasured(id, type(uint256).max);
        assertLe(gDraw, 12_000_000, "drawCommittee");
        assertLe(gReveal, 12_000_000, "revealScores of the busiest seat");
        assertLe(gAppealDraw, 12_000_000, "drawAppeal");
        assertLe(gResolve, 12_000_000, "resolveAppeal");
        assertLe(settleMax, 12_000_000, "settle");
        assertBooks();
        log(string.concat("GASJSON {\"maxima\": {\"K\": 64, \"r\": 31, \"submissions\": ", _u(n),
            ", \"owners\": 8, \"drawCommittee\": ", _u(gDraw), ", \"revealScores_max\": ", _u(gReveal),
            ", \"drawAppeal\": ", _u(gAppealDraw), ", \"resolveAppeal_max\": ", _u(gResolve),
            ", \"settle_calls\": ", _u(calls), ", \"settle_max\": ", _u(settleMax),
            ", \"settle_per_submission\": ", _u(total / n), "}}"));
    }

    function _miner(uint256 s) internal pure returns (address) {
        return address(uint160(0x200000 + s));
    }

    /// commits, eval reveals, the draw (measured), reveals, and the score round (reveals measured)
    function _maximaRound(uint256 id, uint256 n) internal {
        for (uint256 s; s < n; ++s) {
            truth[s] = int32(int256(200 + (s * 37) % 5000));
            commitAs(_miner(s), id, cidOf(_miner(s), s));
            alsoOwed.push(_miner(s));
        }
        toEval(id);
        revealAllEvals(id);
        m.requestDraw(id);
        vm.roll(m.getTask(id).seedBlock);
        vm.prevrandao(nextRandao());
        _cool();
        m.drawCommittee(id);
        gDraw = _measured();
        for (uint256 s; s < n; ++s) revealAs(_miner(s), id, s, cidOf(_miner(s), s));
        toScoreCommit(id);
        for (uint256 j; j < 64; j += 2) mode[j] = Mode.Low; // faulty on every bundle they score
        (address[] memory seats,,) = lens.getSeats(id);
        int32[][] memory vs = new int32[][](64);
        for (uint256 j; j < 64; ++j) {
            vs[j] = vectorOf(id, j);
            vm.prank(seats[j]);
            m.commitScores(id, j, scoreCommitment(vs[j], seats[j], id, j));
        }
        warpPast(m.getTask(id).scoreCommitEnd);
        for (uint256 j; j < 64; ++j) {
            _cool();
            vm.prank(seats[j]);
            m.revealScores(id, j, vs[j], SCORE_SALT);
            uint256 g = _measured();
            if (g > gReveal) gReveal = g;
        }
        warpPast(m.getTask(id).scoreRevealEnd);
    }

    /// an appeal of submission 0 (its 16 Low seats are the majority); 63 appeal seats, a quarter
    /// silent, the rest honest: overturned; draw and every resolution call measured
    function _maximaAppeal(uint256 id) internal {
        uint256 a = appealAs(actor(60), id, 0);
        vm.roll(ap.getAppeal(id, a).seedBlock);
        vm.prevrandao(nextRandao());
        _cool();
        ap.drawAppeal(id, a);
        gAppealDraw = _measured();
        (address[] memory aseats,,,) = ap.getAppealSeats(id, a);
        int32[] memory scores = new int32[](aseats.length);
        bool[] memory silent = new bool[](aseats.length);
        for (uint256 j; j < aseats.length; ++j) {
            scores[j] = truth[0];
            silent[j] = j % 4 == 3;
        }
        scoreAppeal(id, a, scores, silent);
        while (ap.getAppeal(id, a).stage != ICoDreamAppeals.AppealStage.Resolved) {
            _cool();
            ap.resolveAppeal(id, a, type(uint256).max);
            uint256 g = _measured();
            if (g > gResolve) gResolve = g;
        }
        assertTrue(ap.getAppeal(id, a).outcome == ICoDreamAppeals.Outcome.Overturned, "the appeal overturned");
    }
}
