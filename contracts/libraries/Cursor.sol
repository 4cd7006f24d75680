// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Cursor: the batch window of a keeper call (docs/protocol-v3.md §8).
/// @notice A keeper call that walks a list (a settlement stage's submissions or seats, an appeal's
/// seats) runs the items [from, to) from the cursor it stored last time, at most n of them, never
/// past the end; the next call starts at `to`. CoDreamMarket's `settle` and CoDreamAppeals'
/// `resolveAppeal` both take their window from here.
library Cursor {
    /// @dev the end (exclusive) of the next batch: min(from + n, end)
    function next(uint256 from, uint256 n, uint256 end) internal pure returns (uint256 to) {
        return from + n < end ? from + n : end;
    }
}
