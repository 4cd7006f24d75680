// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICoDreamMarket} from "../../contracts/interfaces/ICoDreamMarket.sol";
import {MarketBase} from "./MarketBase.sol";

/// Property 6 (scale): 1,024 submissions x 32 seats x r = 5 settle in batches that each stay
/// under 5M gas, and the committee draw costs O(log V) in the number of verifiers V.
///
/// Gas is read with `vm.lastCallGas()` after `vm.cool` on both contracts, so storage is priced
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
        return vm.lastCallGas().gasTotalUsed;
    }

    function _cool() internal {
        vm.cool(address(m));
        vm.cool(address(reg));
    }

    function test_1024SubmissionsSettleInBatchesUnder5MGas() public {
        for (uint256 i; i < 40; ++i) stakeAs(actor(10 + i), 1 ether);
        vm.roll(block.number + 1);
        uint256 id = newTask(actor(0), 10 ether, 32, 5, 100, 150, 1000);
        uint256 n = 1024;
        for (uint256 s; s < n; ++s) truth[s] = int32(int256(200 + (s * 37) % 5000));
        submit(id, n, 16); // every 16th never revealed
        revealEvalAs(id, 0);
        draw(id);
        mode[3] = Mode.Low; // one seat under-scores: it disagrees and is slashed
        mode[7] = Mode.Silent; // one seat never reveals: slashed
        scoreRound(id);

        uint256 maxBatch;
        uint256 total;
        uint256 calls;
        while (m.phaseOf(id) != ICoDreamMarket.Phase.Finalized) {
            _cool();
            m.settle(id, 160);
            uint256 g = _measured() + TX;
            total += g;
            ++calls;
            if (g > maxBatch) maxBatch = g;
        }
        assertLe(maxBatch, 5_000_000, "a settlement batch exceeds 5M gas");
        assertLe(total / n, 60_000, "settlement per submission above 60k amortised");
        assertEq(m.getTask(id).escrow, 0, "escrow left");
        (int32[] memory res, ICoDreamMarket.Status[] memory st) = m.results(id, 0, n);
        for (uint256 s; s < n; ++s) {
            if (s % 16 == 15) {
                assertTrue(st[s] == ICoDreamMarket.Status.Unrevealed, "unrevealed");
            } else {
                assertTrue(st[s] == ICoDreamMarket.Status.Accepted && res[s] == truth[s], "honest result stands");
            }
        }
        (, uint256 d3) = m.seatStats(id, 3);
        assertTrue(d3 > 0, "the low seat disagreed");
        log(string.concat("GASJSON {\"settle_1024x32x5\": {\"calls\": ", _u(calls), ", \"batch_items\": 160",
            ", \"max_batch\": ", _u(maxBatch), ", \"total\": ", _u(total), ", \"per_submission\": ", _u(total / n),
            "}}"));
    }

    /// stakes `v` verifiers, each in its own block (so the tree's nodes carry long histories)
    function _registerVerifiers(uint256 from, uint256 v) internal returns (uint256 lastStakeGas) {
        for (uint256 i = from; i < v; ++i) {
            address a = address(uint160(0x100000 + i));
            vm.deal(a, 1 ether);
            vm.roll(block.number + 1);
            _cool();
            vm.prank(a);
            reg.stake{value: 0.1 ether + (i % 7) * 0.1 ether}();
            lastStakeGas = _measured() + TX;
        }
    }

    /// the draw of MAX_SEATS seats at V verifiers, and the gas of the V-th stake
    function _drawAt(uint256 id) internal returns (uint256 drawGas) {
        m.requestDraw(id);
        uint256 seedBlock = m.getTask(id).seedBlock;
        vm.roll(seedBlock + 1);
        vm.setBlockhash(seedBlock, keccak256(abi.encode("seed", seedBlock, id)));
        _cool();
        m.drawCommittee(id);
        drawGas = _measured() + TX;
    }

    function _taskReadyToDraw(uint8 k) internal returns (uint256 id) {
        id = newTask(actor(0), 1 ether, k, 5, 100, 150, 1000);
        submit(id, 1, 0);
        revealEvalAs(id, 0);
    }

    function test_DrawCostGrowsLogarithmicallyInVerifiers() public {
        uint8 k = uint8(m.MAX_SEATS());
        uint256 stake1k = _registerVerifiers(0, 1000);
        uint256 draw1k = _drawAt(_taskReadyToDraw(k));
        uint256 stake10k = _registerVerifiers(1000, 10_000);
        uint256 draw10k = _drawAt(_taskReadyToDraw(k));
        assertEq(reg.verifierCount(), 10_000, "verifiers");
        assertLe(draw10k, 5_000_000, "drawing MAX_SEATS at V = 10,000 exceeds 5M gas");
        // log2(16384) / log2(1024) = 1.4 levels of tree: allow that and nothing near linear (10x)
        assertLe(draw10k * 100, draw1k * 150, "draw cost grows faster than log V");
        log(string.concat("GASJSON {\"draw\": {\"seats\": ", _u(k), ", \"V1000\": ", _u(draw1k), ", \"V10000\": ",
            _u(draw10k), ", \"stake_at_V1000\": ", _u(stake1k), ", \"stake_at_V10000\": ", _u(stake10k), "}}"));
    }
}
