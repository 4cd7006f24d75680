// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SumTree} from "../../contracts/libraries/SumTree.sol";
import {Scores} from "../../contracts/libraries/Scores.sol";
import {MiniTest} from "./lib/MiniTest.sol";

contract SumTreeHarness {
    using SumTree for SumTree.Tree;

    SumTree.Tree internal t;

    function add() external returns (uint256) { return t.add(); }

    function set(uint256 slot, uint256 w) external { t.set(slot, w); }

    function size() external view returns (uint256) { return t.size; }

    function totalAt(uint256 b) external view returns (uint256) { return t.totalAt(b); }

    function weightAt(uint256 slot, uint256 b) external view returns (uint256) { return t.weightAt(slot, b); }

    function findAt(uint256 b, uint256 target) external view returns (uint256) { return t.findAt(b, target); }
}

/// The checkpointed Fenwick tree against a plain replay of every write.
contract SumTreeTest is MiniTest {
    SumTreeHarness internal h;

    struct Write {
        uint256 blockNumber;
        uint256 slot;
        uint256 weight;
    }

    Write[] internal writes;

    function setUp() public {
        h = new SumTreeHarness();
        vm.roll(100);
    }

    /// the weights at the end of block b, by replaying the writes made up to b
    function _weightsAt(uint256 b, uint256 n) internal view returns (uint256[] memory w) {
        w = new uint256[](n + 1);
        for (uint256 i; i < writes.length; ++i) {
            if (writes[i].blockNumber <= b && writes[i].slot <= n) w[writes[i].slot] = writes[i].weight;
        }
    }

    function testFuzz_MatchesReplayAtEveryPastBlock(uint256 seed, uint8 steps) public {
        uint256 n = bound(steps, 1, 60);
        uint256 slots;
        uint256 first = block.number;
        for (uint256 i; i < n; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            if (slots == 0 || r % 4 == 0) {
                slots = h.add();
            } else {
                uint256 slot = 1 + (r >> 8) % slots;
                uint256 w = (r >> 32) % 3 == 0 ? 0 : (r >> 64) % 1000;
                h.set(slot, w);
                writes.push(Write(block.number, slot, w));
            }
            if ((r >> 128) % 3 != 0) vm.roll(block.number + 1 + (r >> 136) % 3); // same-block writes too
        }
        uint256 last = block.number;
        vm.roll(last + 1);
        uint256 stride = (last - first) / 12 + 1; // about a dozen past blocks per run
        for (uint256 b = first - 1; b <= last; b += stride) {
            uint256[] memory w = _weightsAt(b, slots);
            uint256 total;
            for (uint256 s = 1; s <= slots; ++s) {
                assertEq(h.weightAt(s, b), w[s], "weightAt");
                total += w[s];
            }
            assertEq(h.totalAt(b), total, "totalAt");
            if (total == 0) continue;
            // every target lands in the slot whose cumulative range holds it
            uint256 below;
            for (uint256 s = 1; s <= slots; ++s) {
                if (w[s] == 0) continue;
                assertEq(h.findAt(b, below), s, "findAt at a range start");
                assertEq(h.findAt(b, below + w[s] - 1), s, "findAt at a range end");
                below += w[s];
            }
        }
    }

    function test_RevertWhen_TargetIsNotBelowTheTotal() public {
        h.add();
        h.set(1, 5);
        vm.roll(block.number + 1);
        vm.expectRevert(abi.encodeWithSelector(SumTree.TargetOutOfRange.selector, 5, 5));
        h.findAt(block.number - 1, 5);
    }

    function test_CapacityGrowsWithoutALimit() public {
        for (uint256 i; i < 1025; ++i) h.add();
        h.set(1025, 7);
        h.set(3, 2);
        vm.roll(block.number + 1);
        assertEq(h.totalAt(block.number - 1), 9, "total over a doubled capacity");
        assertEq(h.findAt(block.number - 1, 2), 1025, "the slot past the old capacity");
        assertEq(h.totalAt(99), 0, "before any write");
    }
}

contract ScoresHarness {
    function lowerMedian(int32[] memory a) external pure returns (int32) { return Scores.lowerMedian(a, a.length); }

    function sortedMedian(int32[] memory a) external pure returns (int32) {
        uint256[] memory keys = new uint256[](a.length);
        uint256 c;
        for (uint256 i; i < a.length; ++i) c = Scores.insertSorted(keys, c, a[i], i);
        for (uint256 i = 1; i < c; ++i) {
            if (Scores.keyValue(keys[i - 1]) > Scores.keyValue(keys[i])) revert("keys not sorted");
        }
        return Scores.keyValue(keys[(c - 1) / 2]);
    }
}

/// Score maths: medians, keys, tolerance and the seat <-> submission assignment.
contract ScoresTest is MiniTest {
    ScoresHarness internal h;

    function setUp() public { h = new ScoresHarness(); }

    function testFuzz_MedianIsTheLowerMedianAndKeysAgree(int32[] memory values) public view {
        vm.assume(values.length > 0 && values.length <= 64);
        int32[] memory copy = new int32[](values.length);
        for (uint256 i; i < values.length; ++i) copy[i] = values[i];
        int32 got = h.lowerMedian(copy);
        uint256 want = (values.length - 1) / 2;
        uint256 below;
        uint256 atOrBelow;
        for (uint256 i; i < values.length; ++i) {
            if (values[i] < got) ++below;
            if (values[i] <= got) ++atOrBelow;
        }
        assertTrue(below <= want && atOrBelow >= want + 1, "not the lower median");
        assertEq(int256(h.sortedMedian(values)), int256(got), "sorted keys give another median");
    }

    function test_SentinelsSortBelowEveryGainAndOnlyMatchThemselves() public pure {
        assertTrue(Scores.INVALID < Scores.NO_EVAL && Scores.NO_EVAL < -Scores.MAX_GAIN, "order");
        assertTrue(Scores.within(Scores.INVALID, Scores.INVALID, 300), "INVALID supports INVALID");
        assertTrue(!Scores.within(Scores.NO_EVAL, Scores.INVALID, 300), "NO_EVAL is not INVALID");
        assertTrue(!Scores.within(-10_000, Scores.NO_EVAL, 10_000), "a gain never supports a sentinel");
        assertTrue(Scores.within(100, 400, 300) && !Scores.within(100, 401, 300), "tolerance is inclusive");
        assertTrue(!Scores.isValid(10_001) && !Scores.isValid(-10_001) && Scores.isValid(Scores.NO_EVAL), "range");
        assertTrue(Scores.isMajority(3, 5) && !Scores.isMajority(2, 5) && !Scores.isMajority(2, 4), "majority");
    }

    /// forge-config: default.fuzz.runs = 32
    function testFuzz_AssignmentIsConsistent(uint256 kSeed, uint256 rSeed, uint256 nSeed) public pure {
        uint256 k = bound(kSeed, 1, 64);
        uint256 r = bound(rSeed, 1, k);
        uint256 n = bound(nSeed, 0, 130);
        uint256 total;
        uint256[] memory seen = new uint256[](n);
        for (uint256 j; j < k; ++j) {
            uint256[] memory subs = Scores.seatSubmissions(j, n, k, r);
            assertEq(subs.length, Scores.count(j, n, k, r), "count");
            for (uint256 i; i < subs.length; ++i) {
                assertEq(Scores.rank(j, subs[i], k, r), i, "rank is the position");
                if (i > 0) assertTrue(subs[i] > subs[i - 1], "ascending");
                seen[subs[i]] += 1;
            }
            total += subs.length;
        }
        assertEq(total, n * r, "every submission has r seats");
        for (uint256 s; s < n; ++s) {
            assertEq(seen[s], r, "r distinct seats");
            for (uint256 d; d < r; ++d) assertTrue(Scores.scores(Scores.seatOf(s, d, k), s, k, r), "seatOf");
        }
    }
}
