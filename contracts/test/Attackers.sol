// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// Test-only actors for the attack checklist. Never deployed outside tests.
interface IMarket {
    function commit(uint256 taskId, bytes32 commitment) external payable;
    function reveal(uint256 taskId, uint256 index, string calldata cid, bytes32 salt) external;
    function withdraw() external;
}

/// commits and reveals in one transaction (so in one block)
contract SameBlockRevealer {
    function attack(IMarket m, uint256 taskId, uint256 index, string calldata cid, bytes32 salt) external payable {
        bytes32 c = keccak256(abi.encode(cid, salt, address(this), taskId, block.chainid, address(m)));
        m.commit{value: msg.value}(taskId, c);
        m.reveal(taskId, index, cid, salt);
    }
}

/// a miner contract that rejects ETH, or re-enters withdraw when paid
contract HostileMiner {
    IMarket public m;
    bool public reenter;
    bool public reject;
    uint256 public reentered;

    constructor(IMarket market) { m = market; }

    function setMode(bool reenter_, bool reject_) external { reenter = reenter_; reject = reject_; }

    function commit(uint256 taskId, bytes32 c) external payable { m.commit{value: msg.value}(taskId, c); }

    function reveal(uint256 taskId, uint256 index, string calldata cid, bytes32 salt) external {
        m.reveal(taskId, index, cid, salt);
    }

    function pull() external { m.withdraw(); }

    receive() external payable {
        if (reject) revert("no ETH please");
        if (reenter) {
            reentered += 1;
            m.withdraw(); // must fail: nonReentrant and already zeroed
        }
    }
}
