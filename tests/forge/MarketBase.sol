// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICoDreamAppeals} from "../../contracts/interfaces/ICoDreamAppeals.sol";
import {ICoDreamMarket} from "../../contracts/interfaces/ICoDreamMarket.sol";
import {IStakeRegistry} from "../../contracts/interfaces/IStakeRegistry.sol";
import {ProtocolParams} from "../../contracts/libraries/ProtocolParams.sol";
import {Scores} from "../../contracts/libraries/Scores.sol";
import {CoDreamLens} from "../../contracts/CoDreamLens.sol";
import {MiniTest} from "./lib/MiniTest.sol";

/// Drives whole v3 rounds on the production parameters: stake (and warm up), create, commit,
/// eval reveal, draw, bundle reveal, score per seat behaviour, appeal, settle in batches.
/// Tests set `truth[s]` (the honest score of submission s), `mode[seat]` and
/// `evalVote[ownerIndex]` (the honest seats' eval verdict; default EVAL_OK) before `scoreRound`.
abstract contract MarketBase is MiniTest {
    enum Mode { Honest, Silent, Invalid, Extreme, NoEval, Lazy, Low }

    ICoDreamMarket internal m;
    IStakeRegistry internal reg;
    ICoDreamAppeals internal ap;
    CoDreamLens internal lens;
    ICoDreamMarket.Params internal P;
    uint32[5] internal W;
    uint256 internal constant BOND = 0.01 ether;
    uint16 internal constant ACC = 9500; // declared accuracy of the teachers on an eval set
    bytes32 internal constant EVAL_SALT = keccak256("eval-salt");
    bytes32 internal constant SCORE_SALT = keccak256("score-salt");
    mapping(uint256 => int32) internal truth; // submission => honest score
    mapping(uint256 => Mode) internal mode; // seat => behaviour
    mapping(uint256 => int32) internal evalVote; // owner index => honest seats' eval verdict (0: EVAL_OK)
    uint256 internal randaoNonce;

    function setUp() public virtual {
        vm.roll(1000);
        vm.warp(1_700_000_000);
        P = ProtocolParams.production();
        m = ICoDreamMarket(payable(vm.deployCode("CoDreamMarket.sol:CoDreamMarket", abi.encode(P))));
        reg = m.registry();
        ap = ICoDreamAppeals(m.appeals());
        lens = CoDreamLens(vm.deployCode("CoDreamLens.sol:CoDreamLens", abi.encode(address(m))));
        for (uint256 i; i < 5; ++i) W[i] = P.minWindow;
    }

    function actor(uint256 i) internal pure returns (address) {
        return vm.addr(i + 1);
    }

    // ------------------------------------------------------------------ stake
    /// stakes `amount` for `v` (pending until the warm-up is over)
    function stakeAs(address v, uint256 amount) internal {
        vm.deal(v, v.balance + amount);
        vm.prank(v);
        reg.stake{value: amount}();
    }

    /// lets the warm-up pass (time moves WARMUP forward) and activates every verifier given
    function warmUp(address[] memory vs) internal {
        vm.warp(block.timestamp + P.warmup + 1);
        vm.roll(block.number + 1);
        for (uint256 i; i < vs.length; ++i) reg.activate(vs[i]);
        vm.roll(block.number + 1);
    }

    /// n verifiers actor(from .. from + n) with `amount` each, active
    function activeVerifiers(uint256 from, uint256 n, uint256 amount) internal returns (address[] memory vs) {
        vs = new address[](n);
        for (uint256 i; i < n; ++i) {
            vs[i] = actor(from + i);
            stakeAs(vs[i], amount);
        }
        warmUp(vs);
    }

    // ------------------------------------------------------------------ owners
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
        id = m.createTask{value: bounty}("bafyspec", evalCommitment(owner), ACC, BOND, k, r, minGain, tol, fee, W);
    }

    function join(uint256 id, address who, uint256 amount) internal returns (uint256 index) {
        vm.deal(who, who.balance + amount);
        vm.prank(who);
        index = m.joinTask{value: amount}(id, evalCommitment(who), ACC);
    }

    function revealEvalAs(uint256 id, uint256 ownerIndex) internal {
        ICoDreamMarket.Owner[] memory os = m.owners(id);
        vm.prank(os[ownerIndex].addr);
        m.revealEval(id, ownerIndex, evalCid(os[ownerIndex].addr), EVAL_SALT);
    }

    function revealAllEvals(uint256 id) internal {
        uint256 n = m.owners(id).length;
        for (uint256 i; i < n; ++i) revealEvalAs(id, i);
    }

    // ------------------------------------------------------------------ miners
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

    function reclaimAs(address miner, uint256 id, uint256 index, string memory cid) internal {
        vm.prank(miner);
        m.reclaimBond(id, index, cid, keccak256(bytes(cid)));
    }

    // ------------------------------------------------------------------ time
    function warpPast(uint256 deadline) internal {
        if (block.timestamp <= deadline) vm.warp(deadline + 1);
        vm.roll(block.number + 1);
    }

    function toEval(uint256 id) internal {
        warpPast(m.getTask(id).commitEnd);
    }

    function toEvalEnd(uint256 id) internal {
        warpPast(m.getTask(id).evalRevealEnd);
    }

    function toScoreCommit(uint256 id) internal {
        warpPast(m.getTask(id).revealEnd);
    }

    function toSettlement(uint256 id) internal {
        warpPast(m.getTask(id).appealEnd);
    }

    // ------------------------------------------------------------------ committee
    function nextRandao() internal returns (bytes32) {
        return keccak256(abi.encode("randao", ++randaoNonce));
    }

    /// requests (unless pending), rolls to the seed block, draws with a fresh prevrandao
    function draw(uint256 id) internal returns (address[] memory seats) {
        return drawWith(id, nextRandao());
    }

    function drawWith(uint256 id, bytes32 randao) internal returns (address[] memory seats) {
        ICoDreamMarket.Task memory t = m.getTask(id);
        if (t.seedBlock == 0 || block.number > t.seedBlock + m.DRAW_WINDOW_BLOCKS()) m.requestDraw(id);
        uint256 seedBlock = m.getTask(id).seedBlock;
        if (block.number < seedBlock) vm.roll(seedBlock);
        vm.prevrandao(randao);
        m.drawCommittee(id);
        (seats,,) = lens.getSeats(id);
    }

    /// the seats a draw would give, for prevrandao `randao` (the market's formula)
    function seatsFor(uint256 id, bytes32 randao) internal view returns (address[] memory seats) {
        ICoDreamMarket.Task memory t = m.getTask(id);
        bytes32 seed = keccak256(abi.encode(randao, id, uint256(t.snapshotBlock)));
        uint256 total = reg.totalAt(t.snapshotBlock);
        seats = new address[](t.seats);
        for (uint256 j; j < t.seats; ++j) {
            seats[j] = reg.sampleAt(t.snapshotBlock, uint256(keccak256(abi.encode(seed, j))) % total);
        }
    }

    /// n submissions by miners actor(100 + i): commit; eval reveal (every owner); draw; reveal all
    /// but every `unrevealedEvery`-th; ends at the start of the score-commit window
    function submit(uint256 id, uint256 n, uint256 unrevealedEvery) internal returns (address[] memory seats) {
        for (uint256 i; i < n; ++i) commitAs(actor(100 + i), id, cidOf(actor(100 + i), i));
        toEval(id);
        revealAllEvals(id);
        seats = draw(id);
        revealSubmissions(id, n, unrevealedEvery);
        toScoreCommit(id);
    }

    function revealSubmissions(uint256 id, uint256 n, uint256 unrevealedEvery) internal {
        for (uint256 i; i < n; ++i) {
            if (unrevealedEvery != 0 && i % unrevealedEvery == unrevealedEvery - 1) continue;
            revealAs(actor(100 + i), id, i, cidOf(actor(100 + i), i));
        }
    }

    // ------------------------------------------------------------------ scores
    function scoreOf(uint256 seat, uint256 s) internal view returns (int32) {
        Mode md = mode[seat];
        if (md == Mode.Invalid) return Scores.INVALID;
        if (md == Mode.NoEval) return Scores.NO_EVAL;
        if (md == Mode.Extreme) return seat % 2 == 0 ? int32(10_000) : int32(-10_000);
        if (md == Mode.Lazy) return 5000;
        if (md == Mode.Low) return truth[s] > -9000 ? truth[s] - 1000 : truth[s];
        return truth[s];
    }

    function voteOf(uint256 ownerIndex) internal view returns (int32) {
        int32 v = evalVote[ownerIndex];
        return v == 0 ? Scores.EVAL_OK : v;
    }

    /// a seat's vector: the eval verdicts, then its submissions' scores
    function vectorOf(uint256 id, uint256 seat) internal view returns (int32[] memory v) {
        uint256[] memory subs = lens.assigned(id, seat);
        uint256 o = m.getTask(id).ownerCount;
        v = new int32[](o + subs.length);
        for (uint256 i; i < o; ++i) v[i] = voteOf(i);
        for (uint256 i; i < subs.length; ++i) v[o + i] = scoreOf(seat, subs[i]);
    }

    function scoreCommitment(int32[] memory v, address verifier, uint256 id, uint256 seat)
        internal view returns (bytes32)
    {
        return keccak256(abi.encode(v, SCORE_SALT, verifier, id, seat, block.chainid, address(m)));
    }

    /// every non-silent seat commits then reveals `vectorOf`; ends after the score-reveal window
    /// (in the appeal window)
    function scoreRound(uint256 id) internal {
        (address[] memory seats,,) = lens.getSeats(id);
        int32[][] memory vs = new int32[][](seats.length);
        for (uint256 j; j < seats.length; ++j) vs[j] = vectorOf(id, j);
        scoreVectors(id, vs);
    }

    /// commits and reveals the given vectors (an empty one: a silent seat)
    function scoreVectors(uint256 id, int32[][] memory vs) internal {
        (address[] memory seats,,) = lens.getSeats(id);
        for (uint256 j; j < seats.length; ++j) {
            if (mode[j] == Mode.Silent) continue;
            vm.prank(seats[j]);
            m.commitScores(id, j, scoreCommitment(vs[j], seats[j], id, j));
        }
        warpPast(m.getTask(id).scoreCommitEnd);
        for (uint256 j; j < seats.length; ++j) {
            if (mode[j] == Mode.Silent) continue;
            vm.prank(seats[j]);
            m.revealScores(id, j, vs[j], SCORE_SALT);
        }
        warpPast(m.getTask(id).scoreRevealEnd);
    }

    // ------------------------------------------------------------------ appeals
    function appealAs(address who, uint256 id, uint256 s) internal returns (uint256 appealId) {
        uint256 d = ap.depositFor(id);
        vm.deal(who, who.balance + d);
        vm.prank(who);
        appealId = ap.appeal{value: d}(id, s);
    }

    function drawAppealWith(uint256 id, uint256 a, bytes32 randao) internal returns (address[] memory seats) {
        ICoDreamAppeals.Appeal memory x = ap.getAppeal(id, a);
        if (block.number < x.seedBlock) vm.roll(x.seedBlock);
        vm.prevrandao(randao);
        ap.drawAppeal(id, a);
        (seats,,,) = ap.getAppealSeats(id, a);
    }

    function appealCommitment(int32 score, address v, uint256 id, uint256 a, uint256 seat)
        internal view returns (bytes32)
    {
        return keccak256(abi.encode(score, SCORE_SALT, v, id, a, seat, block.chainid, address(ap)));
    }

    /// appeal seat j scores `scores[j]`; `silent[j]` seats do nothing; ends after the reveal window
    function scoreAppeal(uint256 id, uint256 a, int32[] memory scores, bool[] memory silent) internal {
        (address[] memory seats,,,) = ap.getAppealSeats(id, a);
        for (uint256 j; j < seats.length; ++j) {
            if (silent[j]) continue;
            vm.prank(seats[j]);
            ap.commitAppealScore(id, a, j, appealCommitment(scores[j], seats[j], id, a, j));
        }
        warpPast(ap.getAppeal(id, a).commitEnd);
        for (uint256 j; j < seats.length; ++j) {
            if (silent[j]) continue;
            vm.prank(seats[j]);
            ap.revealAppealScore(id, a, j, scores[j], SCORE_SALT);
        }
        warpPast(ap.getAppeal(id, a).revealEnd);
    }

    function resolveAll(uint256 id, uint256 a) internal {
        while (ap.getAppeal(id, a).stage != ICoDreamAppeals.AppealStage.Resolved) ap.resolveAppeal(id, a, 5);
    }

    // ------------------------------------------------------------------ settlement
    function settleAll(uint256 id, uint256 batch) internal returns (uint256 calls) {
        while (m.phaseOf(id) != ICoDreamMarket.Phase.Finalized) {
            m.settle(id, batch);
            ++calls;
        }
    }

    function status(uint256 id, uint256 s) internal view returns (ICoDreamMarket.Status st, int32 result) {
        (int32[] memory r, ICoDreamMarket.Status[] memory ss) = lens.results(id, s, 1);
        return (ss[0], r[0]);
    }

    uint256 internal bookActors = 500; // owed() counts the claimable of actor(0 .. bookActors)
    address[] internal alsoOwed; // and of these

    /// what the market owes: claimable of the actors, every task's escrow, and the burned wei
    function owed() internal view returns (uint256 total) {
        total = m.burned();
        for (uint256 i; i < bookActors; ++i) total += m.claimable(actor(i));
        for (uint256 i; i < alsoOwed.length; ++i) total += m.claimable(alsoOwed[i]);
        for (uint256 t = 1; t <= m.taskCount(); ++t) total += m.getTask(t).escrow;
    }

    /// the books: the market's balance == sum(claimable) + sum(escrow) + burned
    function assertBooks() internal view {
        assertEq(address(m).balance, owed(), "balance != claimable + escrow + burned");
    }
}
