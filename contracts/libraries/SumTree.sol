// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title SumTree: a checkpointed Fenwick tree over weighted slots 1..n.
/// @notice `set` is O(log n) writes; `totalAt`, `findAt` and `weightAt` read the tree as it was
/// at the end of any past block, O(log n) node reads each (plus a bounded binary search over a
/// node's checkpoints when it changed after that block). Slots are never removed; a slot's weight
/// can go to zero. The capacity is a power of two that doubles as slots are added, so there is no
/// cap on the number of slots.
library SumTree {
    /// one historical value of a node: valid from `blockNumber` on, until the next checkpoint
    struct Checkpoint {
        uint32 blockNumber;
        uint224 value;
    }

    /// the newest checkpoint and the length of the older history, in one slot
    struct Head {
        uint32 past; // number of checkpoints in `history`
        uint32 blockNumber; // block of the newest checkpoint (0: no checkpoint yet, value 0)
        uint192 value;
    }

    /// The history of one value. A read that needs the newest value costs one storage read.
    struct Trace {
        Head head;
        mapping(uint256 => Checkpoint) history; // older checkpoints, ascending blocks
    }

    struct Tree {
        uint256 size; // slots in use: 1..size
        Trace capacity; // the power of two the tree spans, checkpointed
        mapping(uint256 => Trace) nodes; // Fenwick node i holds the sum of slots (i - lowbit(i), i]
        mapping(uint256 => uint256) weights; // current weight of each slot
    }

    error SlotOutOfRange(uint256 slot, uint256 size);
    error TargetOutOfRange(uint256 target, uint256 total);

    // ------------------------------------------------------------------ writes
    /// @dev appends a slot of weight 0 and returns its number; doubles the capacity when full
    function add(Tree storage t) internal returns (uint256 slot) {
        slot = ++t.size;
        uint256 cap = t.capacity.head.value;
        if (slot > cap) {
            uint256 newCap = cap == 0 ? 1 : cap * 2;
            // the new root spans every slot so far: it starts at the current total
            _push(t.nodes[newCap], cap == 0 ? 0 : t.nodes[cap].head.value);
            _push(t.capacity, newCap);
        }
    }

    /// @dev sets a slot's weight; every node above it is checkpointed at this block
    function set(Tree storage t, uint256 slot, uint256 weight) internal {
        if (slot == 0 || slot > t.size) revert SlotOutOfRange(slot, t.size);
        uint256 old = t.weights[slot];
        if (old == weight) return;
        t.weights[slot] = weight;
        uint256 cap = t.capacity.head.value;
        for (uint256 i = slot; i <= cap; i += i & (~i + 1)) {
            Trace storage node = t.nodes[i];
            uint256 v = node.head.value;
            _push(node, weight > old ? v + (weight - old) : v - (old - weight));
        }
    }

    // ------------------------------------------------------------------ reads
    /// @dev current weight of a slot
    function weightOf(Tree storage t, uint256 slot) internal view returns (uint256) {
        return t.weights[slot];
    }

    /// @dev the sum of all weights at the end of block `b`
    function totalAt(Tree storage t, uint256 b) internal view returns (uint256) {
        uint256 cap = valueAt(t.capacity, b);
        return cap == 0 ? 0 : valueAt(t.nodes[cap], b);
    }

    /// @dev a slot's weight at the end of block `b` (0 for a slot that did not exist yet)
    function weightAt(Tree storage t, uint256 slot, uint256 b) internal view returns (uint256) {
        // nodes above the capacity of block b did not hold sums then
        if (slot == 0 || slot > valueAt(t.capacity, b)) return 0;
        return _prefixAt(t, slot, b) - _prefixAt(t, slot - 1, b);
    }

    /// @dev the slot whose cumulative weight range [prefix(slot-1), prefix(slot)) contains
    /// `target`, at the end of block `b`; needs target < totalAt(b). A slot of weight w is
    /// found for exactly w values of target.
    function findAt(Tree storage t, uint256 b, uint256 target) internal view returns (uint256) {
        uint256 cap = valueAt(t.capacity, b);
        uint256 total = cap == 0 ? 0 : valueAt(t.nodes[cap], b);
        if (target >= total) revert TargetOutOfRange(target, total);
        uint256 pos;
        // node `cap` holds the total (> target), so the descent starts one level below it
        for (uint256 bit = cap >> 1; bit > 0; bit >>= 1) {
            uint256 v = valueAt(t.nodes[pos + bit], b);
            if (v <= target) {
                pos += bit;
                target -= v;
            }
        }
        return pos + 1;
    }

    /// @dev the value of a trace at the end of block `b`: the newest checkpoint at or before b.
    /// Checks the head and the newest past checkpoint first (a snapshot is usually recent), then
    /// binary-searches the history: at most 2 + log2(history) reads.
    function valueAt(Trace storage tr, uint256 b) internal view returns (uint256) {
        Head memory h = tr.head;
        if (h.blockNumber <= b) return h.value;
        uint256 hi = h.past;
        if (hi == 0) return 0;
        Checkpoint storage last = tr.history[hi - 1];
        if (last.blockNumber <= b) return last.value;
        // the answer is the last index in [0, hi - 1) with blockNumber <= b, if any
        uint256 lo;
        hi -= 1;
        while (lo < hi) {
            uint256 mid = (lo + hi) / 2;
            if (tr.history[mid].blockNumber > b) hi = mid;
            else lo = mid + 1;
        }
        return lo == 0 ? 0 : tr.history[lo - 1].value;
    }

    // ------------------------------------------------------------------ internals
    /// @dev sum of slots 1..i at the end of block b
    function _prefixAt(Tree storage t, uint256 i, uint256 b) private view returns (uint256 sum) {
        for (; i > 0; i &= i - 1) sum += valueAt(t.nodes[i], b);
    }

    /// @dev records `value` at this block: overwrites the head in the same block, else moves the
    /// head into the history first
    function _push(Trace storage tr, uint256 value) private {
        uint32 b = SafeCast.toUint32(block.number);
        Head memory h = tr.head;
        if (h.blockNumber != b && h.blockNumber != 0) {
            tr.history[h.past] = Checkpoint(h.blockNumber, h.value);
            h.past += 1;
        }
        tr.head = Head(h.past, b, SafeCast.toUint192(value));
    }
}
