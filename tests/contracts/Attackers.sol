// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {ICoDreamMarket} from "../../contracts/interfaces/ICoDreamMarket.sol";
import {ProtocolParams} from "../../contracts/libraries/ProtocolParams.sol";
import {Rules} from "../../contracts/libraries/Rules.sol";
import {Scores} from "../../contracts/libraries/Scores.sol";

/// Test-only actors for the attack checklist and the scale tests, and harnesses that expose the
/// protocol's pure rules to the Python mirror's tests. Never deployed outside tests (this file
/// lives outside the production source tree, contracts/).
interface IMarket {
    function commit(uint256 taskId, bytes32 commitment) external payable returns (uint256);
    function reveal(uint256 taskId, uint256 index, string calldata cid, bytes32 salt) external;
    function withdraw() external;
}

interface IRegistry {
    function stake() external payable;
    function requestUnbond() external;
    function withdrawStake() external;
    function totalAt(uint256 blockNumber) external view returns (uint256);
    function sampleAt(uint256 blockNumber, uint256 r) external view returns (address);
}

/// commits and reveals in one transaction (so in one block, inside the commit window)
contract SameBlockRevealer {
    function attack(IMarket m, uint256 taskId, string calldata cid, bytes32 salt) external payable {
        bytes32 c = keccak256(abi.encode(cid, salt, address(this), taskId, block.chainid, address(m)));
        uint256 index = m.commit{value: msg.value}(taskId, c);
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

/// a verifier contract whose stake withdrawal re-enters withdrawStake
contract HostileVerifier {
    IRegistry public r;
    uint256 public reentered;

    constructor(IRegistry registry) { r = registry; }

    function stake() external payable { r.stake{value: msg.value}(); }

    function requestUnbond() external { r.requestUnbond(); }

    function withdrawStake() external { r.withdrawStake(); }

    receive() external payable {
        reentered += 1;
        r.withdrawStake(); // must fail: nonReentrant, and the record is already reset
    }
}

/// one address committing and revealing many submissions per transaction (scale tests)
contract BulkMiner {
    IMarket public m;
    mapping(uint256 => uint256[]) public indices; // task => submission indices, in commit order

    constructor(IMarket market) { m = market; }

    function cidOf(uint256 taskId, uint256 i) public view returns (string memory) {
        return string.concat("bafybulk", Strings.toHexString(address(this)), "-", Strings.toString(taskId), "-",
            Strings.toString(i));
    }

    /// commits n submissions, msg.value / n bond each
    function commitMany(uint256 taskId, uint256 n) external payable {
        uint256 bond = msg.value / n;
        uint256 first = indices[taskId].length;
        for (uint256 i = first; i < first + n; ++i) {
            string memory cid = cidOf(taskId, i);
            bytes32 c = keccak256(abi.encode(cid, bytes32(i), address(this), taskId, block.chainid, address(m)));
            indices[taskId].push(m.commit{value: bond}(taskId, c));
        }
    }

    /// reveals this miner's submissions [from, to) of a task
    function revealMany(uint256 taskId, uint256 from, uint256 to) external {
        for (uint256 i = from; i < to; ++i) m.reveal(taskId, indices[taskId][i], cidOf(taskId, i), bytes32(i));
    }

    function count(uint256 taskId) external view returns (uint256) { return indices[taskId].length; }

    function pull() external { m.withdraw(); }

    receive() external payable {}
}

/// a verifier that is a contract: stakes from its own address on creation
contract Staker {
    constructor(IRegistry registry) payable {
        registry.stake{value: msg.value}();
    }
}

/// registers many verifiers in one transaction (no verifier cap)
contract StakerFactory {
    function make(IRegistry registry, uint256 n) external payable returns (address[] memory out) {
        out = new address[](n);
        for (uint256 i; i < n; ++i) out[i] = address(new Staker{value: msg.value / n}(registry));
    }
}

/// drawCommittee's sampling for many seeds in one call: per seed, the seats of k that members of
/// `group` would get (seat j = sampleAt(snap, keccak(seed, j) % totalAt(snap)))
contract DrawProbe {
    function groupSeats(IRegistry r, uint256 snap, bytes32[] calldata seeds, uint256 k, address[] calldata group)
        external view returns (uint256[] memory counts)
    {
        uint256 total = r.totalAt(snap);
        counts = new uint256[](seeds.length);
        for (uint256 i; i < seeds.length; ++i) {
            for (uint256 j; j < k; ++j) {
                address v = r.sampleAt(snap, uint256(keccak256(abi.encode(seeds[i], j))) % total);
                for (uint256 g; g < group.length; ++g) {
                    if (group[g] == v) counts[i] += 1;
                }
            }
        }
    }
}

/// the assignment maths of Scores, for checking the Python mirror at any size
contract ScoresHarness {
    function seatSubmissions(uint256 j, uint256 n, uint256 k, uint256 r) external pure returns (uint256[] memory) {
        return Scores.seatSubmissions(j, n, k, r);
    }

    function rank(uint256 j, uint256 s, uint256 k, uint256 r) external pure returns (uint256) {
        return Scores.rank(j, s, k, r);
    }

    function count(uint256 j, uint256 n, uint256 k, uint256 r) external pure returns (uint256) {
        return Scores.count(j, n, k, r);
    }
}

/// the settlement rules and the judgement of one submission, for checking the Python mirror
contract RulesHarness {
    function statusOf(int32 m, int256 minGain) external pure returns (uint8) {
        return uint8(Rules.statusOf(m, minGain));
    }

    function bondBack(uint8 status, uint256 bond) external pure returns (uint256) {
        return Rules.bondBack(ICoDreamMarket.Status(status), bond);
    }

    function proRata(uint256 amount, uint256 part, uint256 whole) external pure returns (uint256) {
        return Rules.proRata(amount, part, whole);
    }

    function ownerVerdict(uint256 ok, uint256 notOk, uint256 seats) external pure returns (uint8) {
        return uint8(Rules.ownerVerdict(ok, notOk, seats));
    }

    /// the lower median of `scores`, and whether more than half of `eligible` seats support it
    function decide(int32[] calldata scores, uint256 eligible, uint256 tolerance)
        external pure returns (int32 m, bool majority)
    {
        uint256[] memory keys = new uint256[](scores.length);
        uint256 c;
        for (uint256 i; i < scores.length; ++i) c = Scores.insertSorted(keys, c, scores[i], i);
        (m, majority,) = Scores.decide(keys, c, eligible, tolerance);
    }

    function production() external pure returns (ICoDreamMarket.Params memory) {
        return ProtocolParams.production();
    }
}
