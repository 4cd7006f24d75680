// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Scores: score values, eval verdicts, the majority rule and the seat <-> submission
/// assignment (docs/protocol-v3.md §5).
/// @notice A score is a signed distillation gain in basis points in [-MAX_GAIN, MAX_GAIN], or one
/// of two sentinels that sort below every gain: INVALID (the bundle failed validation) and
/// NO_EVAL (the verifier had no eval set it judged usable). A seat's vector starts with one eval
/// verdict per owner (EVAL_OK, EVAL_FAILED, EVAL_UNAVAILABLE), then its submissions' scores.
///
/// Assignment: with N submissions and K seats, submission s is scored by the r distinct seats
/// (s + d) mod K, d = 0..r-1. Seat j therefore scores the submissions s < N with
/// (j - s) mod K < r, in ascending order; its score vector has `count(j)` entries and the score of
/// submission s sits at position `rank(j, s)`.
library Scores {
    int32 internal constant INVALID = type(int32).min;
    int32 internal constant NO_EVAL = type(int32).min + 1;
    int32 internal constant MAX_GAIN = 10_000;
    int32 internal constant EVAL_OK = 1; // the owner's eval set passed every check
    int32 internal constant EVAL_FAILED = 2; // it was fetched but failed a check (format, labels, accuracy)
    int32 internal constant EVAL_UNAVAILABLE = 3; // nobody served it

    // ------------------------------------------------------------------ values
    /// @dev a gain in [-MAX_GAIN, MAX_GAIN] or a sentinel
    function isValid(int32 x) internal pure returns (bool) {
        return x <= NO_EVAL || (x >= -MAX_GAIN && x <= MAX_GAIN);
    }

    /// @dev an eval verdict entry (EVAL_OK, EVAL_FAILED or EVAL_UNAVAILABLE)
    function isVerdict(int32 x) internal pure returns (bool) {
        return x >= EVAL_OK && x <= EVAL_UNAVAILABLE;
    }

    /// @dev x supports m: equal if either is a sentinel, else |x - m| <= tolerance
    function within(int32 x, int32 m, uint256 tolerance) internal pure returns (bool) {
        if (x <= NO_EVAL || m <= NO_EVAL) return x == m;
        int256 d = int256(x) - int256(m);
        return uint256(d < 0 ? -d : d) <= tolerance;
    }

    /// @dev the lower median of a[0..n) (sorts that prefix in place; n >= 1; insertion sort, n <= r)
    function lowerMedian(int32[] memory a, uint256 n) internal pure returns (int32) {
        for (uint256 i = 1; i < n; ++i) {
            int32 x = a[i];
            uint256 j = i;
            while (j > 0 && a[j - 1] > x) {
                a[j] = a[j - 1];
                --j;
            }
            a[j] = x;
        }
        return a[(n - 1) / 2];
    }

    /// @dev inserts score x tagged with `tag` (< 256) into keys[0..n), kept ascending by score;
    /// returns n + 1. A key is the score with its sign bit flipped (so unsigned order is signed
    /// order, sentinels first) above an 8-bit tag.
    function insertSorted(uint256[] memory keys, uint256 n, int32 x, uint256 tag) internal pure returns (uint256) {
        uint256 key = (uint256(uint32(x) ^ 0x80000000) << 8) | tag;
        uint256 i = n;
        while (i > 0 && keys[i - 1] > key) {
            keys[i] = keys[i - 1];
            --i;
        }
        keys[i] = key;
        return n + 1;
    }

    /// @dev the score of a key made by insertSorted
    function keyValue(uint256 key) internal pure returns (int32) {
        return int32(uint32(key >> 8) ^ 0x80000000);
    }

    /// @dev the tag of a key made by insertSorted
    function keyTag(uint256 key) internal pure returns (uint256) {
        return key & 0xff;
    }

    /// @dev how many of a[0..n) support m
    function support(int32[] memory a, uint256 n, int32 m, uint256 tolerance) internal pure returns (uint256 c) {
        for (uint256 i; i < n; ++i) {
            if (within(a[i], m, tolerance)) ++c;
        }
    }

    /// @dev a result stands iff more than half of all eligible seats (silent ones included) support it
    function isMajority(uint256 supporters, uint256 eligible) internal pure returns (bool) {
        return 2 * supporters > eligible;
    }

    /// @dev the judgement of one submission from its c revealed scores, sorted as keys
    /// (insertSorted), and its eligible seat count: the lower median m, whether more than half of
    /// the eligible seats support it, and which keys (bit i: keys[i]) support it
    function decide(uint256[] memory keys, uint256 c, uint256 eligible, uint256 tolerance)
        internal pure returns (int32 m, bool majority, uint256 supportMask)
    {
        if (c == 0) return (NO_EVAL, false, 0);
        m = keyValue(keys[(c - 1) / 2]);
        uint256 supporters;
        for (uint256 i; i < c; ++i) {
            if (within(keyValue(keys[i]), m, tolerance)) {
                ++supporters;
                supportMask |= 1 << i;
            }
        }
        majority = isMajority(supporters, eligible);
    }

    // ------------------------------------------------------------------ assignment
    /// @dev the d-th seat (d < r) that scores submission s
    function seatOf(uint256 s, uint256 d, uint256 k) internal pure returns (uint256) {
        return (s + d) % k;
    }

    /// @dev whether seat j scores submission s
    function scores(uint256 j, uint256 s, uint256 k, uint256 r) internal pure returns (bool) {
        return (j + k - s % k) % k < r;
    }

    /// @dev number of submissions s' < s that seat j scores (O(r) arithmetic)
    function rank(uint256 j, uint256 s, uint256 k, uint256 r) internal pure returns (uint256 n) {
        for (uint256 d; d < r; ++d) {
            uint256 c = (j + k - d) % k; // residue of the submissions that meet seat j at offset d
            if (s > c) n += (s - c - 1) / k + 1;
        }
    }

    /// @dev length of seat j's score vector when n submissions were committed
    function count(uint256 j, uint256 n, uint256 k, uint256 r) internal pure returns (uint256) {
        return rank(j, n, k, r);
    }

    /// @dev the submissions seat j scores, ascending
    function seatSubmissions(uint256 j, uint256 n, uint256 k, uint256 r) internal pure returns (uint256[] memory out) {
        out = new uint256[](count(j, n, k, r));
        uint256 c;
        for (uint256 s; s < n; ++s) {
            if (scores(j, s, k, r)) out[c++] = s;
        }
    }

    // ------------------------------------------------------------------ packing
    /// @dev eight scores per storage word, entry i in bits [32i, 32i + 32)
    function unpack(uint256 word, uint256 i) internal pure returns (int32) {
        return int32(uint32(word >> (32 * i)));
    }

    function pack(uint256 word, uint256 i, int32 x) internal pure returns (uint256) {
        return word | (uint256(uint32(x)) << (32 * i));
    }
}
