// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICoDreamMarket} from "../interfaces/ICoDreamMarket.sol";

/// @title ProtocolParams: the production parameters of protocol v3 (docs/protocol-v3.md §2).
/// @notice A market is deployed with a Params struct; these are the values a public network
/// uses (mirrored in codream/protocol.py: PRODUCTION_PARAMS, checked equal by the brownie tests).
/// The forge tests run on them. A rehearsal chain may deploy shorter floors through the same
/// constructor, which checks that any set holds together.
library ProtocolParams {
    function production() internal pure returns (ICoDreamMarket.Params memory) {
        return ICoDreamMarket.Params({
            minWindow: 1 hours, // 300 blocks of 12 s: every window holds hundreds of blocks
            maxCommitWindow: 7 days,
            maxEvalWindow: 2 days,
            maxLockWindow: 2 days, // reveal, score commit, score reveal: each locks the seats' stake
            secondsPerBundle: 30, // score-commit floor: 1 h + 30 s per bundle of the busiest seat
            drawTimeout: 1 days,
            appealWindow: 1 days,
            appealScoreWindow: 12 hours,
            // > 7 + 2 + 1 + 2 + 2 + 2 + 1 + 1 days: creation to the last appeal committee's draw
            warmup: 21 days,
            unbondingDelay: 7 days, // > eval window + draw timeout: a snapshot's stake is still there
            minSeatsPerSubmission: 5
        });
    }
}
