// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICoDreamMarket} from "../../contracts/interfaces/ICoDreamMarket.sol";
import {StakeRegistry} from "../../contracts/StakeRegistry.sol";
import {Scores} from "../../contracts/libraries/Scores.sol";
import {MiniTest} from "./lib/MiniTest.sol";

/// Drives whole rounds: stake, create, commit/reveal, eval reveal, draw, score per seat
/// behaviour, settle in batches. Tests set `truth[s]` (the honest score of submission s) and
/// `mode[seat]` before `scoreRound`.
abstract contract MarketBase is MiniTest {
    enum Mode { Honest, Silent, Invalid, Extreme, NoEval, Lazy, Low }

    ICoDreamMarket internal m;
    StakeRegistry internal reg;
    uint32[5] internal W = [uint32(1000), 1000, 1000, 1000, 1000];
    uint256 internal constant BOND = 0.01 ether;
    bytes32 internal constant EVAL_SALT = keccak256("eval-salt");
    bytes32 internal constant SCORE_SALT = keccak256("score-salt");
    mapping(uint256 => int32) internal truth; // submission => honest score
    mapping(uint256 => Mode) internal mode; // seat => behaviour

    function setUp() public virtual {
        vm.roll(1000);
        vm.warp(1_700_000_000);
        m = ICoDreamMarket(payable(vm.deployCode("CoDreamMarket.sol:CoDreamMarket")));
        reg = m.registry();
    }

    function actor(uint256 i) internal pure returns (address) {
        return vm.addr(i + 1);
    }

    function stakeAs(address v, uint256 amount) internal {
        vm.deal(v, v.balance + amount);
        vm.prank(v);
        reg.stake{value: amount}();
    }

    function evalCommitment(address owner) internal pure returns (bytes32) {
        return keccak256(abi.encode(evalCid(owner), EVAL_SALT));
    }

    function evalCid(address owner) internal pure returns (string memory) {
        return string(abi.encodePacked("bafyeval", owner));
    }

    function newTask(address owner, uint256 bounty, uint8 k, uint8 r, int16 minGain, uint16 tol, uint16 fee)
        internal returns (uint256 id)
    {
        vm.deal(owner, owner.balance + bounty);
        vm.prank(owner);
        id = m.createTask{value: bounty}("bafyspec", evalCommitment(owner), BOND, k, r, minGain, tol, fee, W);
    }

    function cidOf(address miner, uint256 i) internal pure returns (string memory) {
        return string(abi.encodePacked("bafy", miner, uint16(i)));
    }

    function minerCommitment(string memory cid, address miner, uint256 id) internal view returns (bytes32) {
        return keccak256(abi.encode(cid, keccak256(bytes(cid)), miner, id, block.chainid, address(m)));
    }

    function commitAs(address miner, uint256 id, string memory cid) internal returns (uint256 index) {
        vm.deal(miner, miner.balance + BOND);
        vm.prank(miner);
        index = m.commit{value: BOND}(id, minerCommitment(cid, miner, id));
    }

    function revealAs(address miner, uint256 id, uint256 index, string memory cid) internal {
        vm.prank(miner);
        m.reveal(id, index, cid, keccak256(bytes(cid)));
    }

    function toReveal(uint256 id) internal {
        vm.warp(uint256(m.getTask(id).commitEnd) + 1);
        vm.roll(block.number + 1);
    }

    function toEval(uint256 id) internal {
        vm.warp(uint256(m.getTask(id).revealEnd) + 1);
        vm.roll(block.number + 1);
    }

    function revealEvalAs(uint256 id, uint256 ownerIndex) internal {
        ICoDreamMarket.Owner[] memory os = m.owners(id);
        vm.prank(os[ownerIndex].addr);
        m.revealEval(id, ownerIndex, evalCid(os[ownerIndex].addr), EVAL_SALT);
    }

    /// n submissions by miners actor(100 + i) (distinct addresses), all revealed unless `unrevealed`
    function submit(uint256 id, uint256 n, uint256 unrevealedEvery) internal {
        for (uint256 i; i < n; ++i) commitAs(actor(100 + i), id, cidOf(actor(100 + i), i));
        toReveal(id);
        for (uint256 i; i < n; ++i) {
            if (unrevealedEvery != 0 && i % unrevealedEvery == unrevealedEvery - 1) continue;
            revealAs(actor(100 + i), id, i, cidOf(actor(100 + i), i));
        }
        toEval(id);
    }

    function draw(uint256 id) internal returns (address[] memory seats) {
        m.requestDraw(id);
        uint256 seedBlock = m.getTask(id).seedBlock;
        vm.roll(seedBlock + 1);
        vm.setBlockhash(seedBlock, keccak256(abi.encode("seed", seedBlock, id)));
        m.drawCommittee(id);
        (seats,,) = m.getSeats(id);
    }

    function scoreOf(uint256 seat, uint256 s) internal view returns (int32) {
        Mode md = mode[seat];
        if (md == Mode.Invalid) return Scores.INVALID;
        if (md == Mode.NoEval) return Scores.NO_EVAL;
        if (md == Mode.Extreme) return seat % 2 == 0 ? int32(10_000) : int32(-10_000);
        if (md == Mode.Lazy) return 5000;
        if (md == Mode.Low) return truth[s] > -9000 ? truth[s] - 1000 : truth[s];
        return truth[s];
    }

    function vectorOf(uint256 id, uint256 seat) internal view returns (int32[] memory v) {
        uint256[] memory subs = m.assigned(id, seat);
        v = new int32[](subs.length);
        for (uint256 i; i < subs.length; ++i) v[i] = scoreOf(seat, subs[i]);
    }

    function scoreCommitment(int32[] memory v, address verifier, uint256 id, uint256 seat)
        internal view returns (bytes32)
    {
        return keccak256(abi.encode(v, SCORE_SALT, verifier, id, seat, block.chainid, address(m)));
    }

    /// every non-silent seat commits then reveals its vector; ends after the score-reveal window
    function scoreRound(uint256 id) internal {
        (address[] memory seats,,) = m.getSeats(id);
        for (uint256 j; j < seats.length; ++j) {
            if (mode[j] == Mode.Silent) continue;
            bytes32 c = scoreCommitment(vectorOf(id, j), seats[j], id, j);
            vm.prank(seats[j]);
            m.commitScores(id, j, c);
        }
        vm.warp(uint256(m.getTask(id).scoreCommitEnd) + 1);
        vm.roll(block.number + 1);
        for (uint256 j; j < seats.length; ++j) {
            if (mode[j] == Mode.Silent) continue;
            int32[] memory v = vectorOf(id, j);
            vm.prank(seats[j]);
            m.revealScores(id, j, v, SCORE_SALT);
        }
        vm.warp(uint256(m.getTask(id).scoreRevealEnd) + 1);
        vm.roll(block.number + 1);
    }

    function settleAll(uint256 id, uint256 batch) internal returns (uint256 calls) {
        while (m.phaseOf(id) != ICoDreamMarket.Phase.Finalized) {
            m.settle(id, batch);
            ++calls;
        }
    }

    function status(uint256 id, uint256 s) internal view returns (ICoDreamMarket.Status st, int32 result) {
        (int32[] memory r, ICoDreamMarket.Status[] memory ss) = m.results(id, s, 1);
        return (ss[0], r[0]);
    }
}
