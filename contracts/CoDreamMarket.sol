// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title CoDreamMarket: tasks, commit-reveal mining, staked verifier committees, settlement.
/// @notice Protocol v1 (see README "Protocol"). All amounts are native ETH; all payouts are
/// pull payments through `withdraw`. Every loop is bounded by MAX_SUBMISSIONS,
/// MAX_COMMITTEE or MAX_VERIFIERS.
contract CoDreamMarket is ReentrancyGuardTransient {
    // ------------------------------------------------------------------ constants
    uint256 public constant MAX_SUBMISSIONS = 32;
    uint256 public constant MAX_COMMITTEE = 15;
    uint256 public constant MAX_VERIFIERS = 64;
    uint256 public constant MAX_REDRAWS = 1;
    uint256 public constant MIN_STAKE = 0.1 ether;
    uint256 public constant SLASH_BPS = 2000; // 20 % of stake per offence
    uint256 public constant DRAW_DELAY_BLOCKS = 2;
    uint256 public constant MAX_WINDOW = 30 days;
    /// @notice longer than any task can stay open (5 windows + redraws), so a stake can
    /// never leave before a dispute it could be slashed in is settled
    uint256 public constant UNBONDING_DELAY = 8 * MAX_WINDOW;
    int32 public constant INVALID = type(int32).min;

    enum Phase { None, Open, Drawn, Finalized }

    /// Packed so that each hot path touches as few slots as possible.
    struct Task {
        // slot 0
        address owner;
        uint96 bounty; // escrowed until finalize
        // slot 1: everything commit/reveal need
        uint96 minerBond;
        uint64 commitEnd;
        uint64 revealEnd;
        uint8 submissionCount;
        uint8 committeeSize;
        Phase phase;
        uint8 redraws;
        // slot 2: score windows (deadlines are set by the committee draw)
        uint64 evalRevealEnd;
        uint64 scoreCommitEnd;
        uint64 scoreRevealEnd;
        uint32 scoreCommitWindow;
        uint32 scoreRevealWindow;
        // slot 3
        uint64 seedBlock; // block whose hash seeds the committee draw (0: not requested)
        int16 minGainBps;
        uint16 toleranceBps;
        uint16 verifierFeeBps;
        bytes32 evalCommitment; // keccak256(abi.encode(evalCid, salt))
        string specCid;
        string evalCid; // empty until the owner reveals it
    }

    /// One storage slot per submission. Before the reveal `data` holds the first 24 bytes
    /// of the commitment (192-bit preimage resistance); the reveal overwrites it with the
    /// miner's address. The CID itself lives in the `Revealed` event; `cidUsed` keeps its hash.
    struct Submission {
        bytes24 data;
        uint56 commitBlock;
        bool revealed;
    }

    struct Member {
        address verifier;
        bool revealed;
        bytes32 commitment; // score-vector commitment, 0 until committed
    }

    struct Verifier {
        uint128 stake;
        uint64 unbondAt; // 0 unless unbonding
        uint32 lockedTasks; // open committees this verifier sits on: stake frozen while > 0
        bool registered;
        uint64 lastStakeBlock; // stakes changed at or after a draw request do not count in it
    }

    // ------------------------------------------------------------------ state
    uint256 public taskCount;
    mapping(uint256 => Task) internal _tasks;
    mapping(uint256 => mapping(uint256 => Submission)) internal _submissions; // task => index
    mapping(uint256 => mapping(bytes32 => bool)) public cidUsed; // keccak(cid) revealed in a task
    mapping(uint256 => Member[]) internal _committee;
    /// revealed score vectors, eight int32 per word: task => member index => word
    mapping(uint256 => mapping(uint256 => mapping(uint256 => uint256))) internal _scoreWords;
    mapping(uint256 => int32[]) internal _medians;
    mapping(address => Verifier) public verifiers;
    address[] public verifierList;
    /// @notice wei each address can withdraw now (pull payments). The contract's balance
    /// always equals Σ claimable + Σ stakes + open bounties + open bonds (forge invariant).
    mapping(address => uint256) public claimable;

    // ------------------------------------------------------------------ events
    event TaskCreated(uint256 indexed taskId, address indexed owner, string specCid, uint256 bounty,
        uint256 minerBond, uint256 committeeSize);
    event Committed(uint256 indexed taskId, address indexed miner, uint256 index);
    event Revealed(uint256 indexed taskId, address indexed miner, uint256 index, string cid);
    event EvalRevealed(uint256 indexed taskId, string evalCid);
    event DrawRequested(uint256 indexed taskId, uint256 seedBlock);
    event CommitteeDrawn(uint256 indexed taskId, address[] members, uint256 scoreCommitEnd, uint256 scoreRevealEnd);
    event ScoresCommitted(uint256 indexed taskId, address indexed verifier);
    event ScoresRevealed(uint256 indexed taskId, address indexed verifier, int32[] scores);
    event Redrawn(uint256 indexed taskId, uint256 redraws);
    event SubmissionSettled(uint256 indexed taskId, uint256 indexed index, address indexed miner, int32 median,
        bool accepted, uint256 reward, uint256 bondReturned);
    event Finalized(uint256 indexed taskId, uint256 minersPaid, uint256 verifiersPaid, uint256 ownerRefund);
    event Credited(address indexed account, uint256 indexed taskId, uint256 amount, string reason);
    event Slashed(address indexed verifier, uint256 indexed taskId, uint256 amount, string reason);
    event Staked(address indexed verifier, uint256 amount, uint256 total);
    event UnbondRequested(address indexed verifier, uint256 unbondAt);
    event StakeWithdrawn(address indexed verifier, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);

    // ------------------------------------------------------------------ errors
    error BadParams(string what);
    error UnknownTask(uint256 taskId);
    error WrongPhase(uint256 taskId, string expected);
    error WindowClosed(string window);
    error WindowNotOpen(string window);
    error WrongValue(uint256 expected, uint256 got);
    error TooManySubmissions();
    error AlreadySubmitted();
    error NotYours();
    error NotSubmitted();
    error AlreadyRevealed();
    error SameBlock();
    error BadReveal();
    error DuplicateCid();
    error NotOwner();
    error NotMember();
    error NotEligible(string why);
    error StakeFrozen(string why);
    error NothingToWithdraw();
    error TransferFailed();
    error TooManyVerifiers();
    error TooFewVerifiers(uint256 eligible, uint256 needed);

    // ------------------------------------------------------------------ task owner
    /// @notice Create a task escrowing `msg.value` as bounty.
    /// @param windows [commit, reveal, evalReveal, scoreCommit, scoreReveal] durations in seconds
    function createTask(string calldata specCid, bytes32 evalCommitment, uint96 minerBond, uint8 committeeSize,
        int16 minGainBps, uint16 toleranceBps, uint16 verifierFeeBps, uint32[5] calldata windows)
        external payable returns (uint256 taskId)
    {
        if (msg.value == 0 || msg.value > type(uint96).max) revert BadParams("bounty");
        if (bytes(specCid).length == 0 || bytes(specCid).length > 128) revert BadParams("specCid");
        if (evalCommitment == bytes32(0)) revert BadParams("evalCommitment");
        if (committeeSize == 0 || committeeSize > MAX_COMMITTEE) revert BadParams("committeeSize");
        if (verifierFeeBps > 5000 || toleranceBps > 10000 || minGainBps > 10000) revert BadParams("bps");
        for (uint256 i; i < 5; ++i) {
            if (windows[i] == 0 || windows[i] > MAX_WINDOW) revert BadParams("window");
        }
        taskId = ++taskCount;
        Task storage t = _tasks[taskId];
        t.owner = msg.sender;
        t.bounty = uint96(msg.value);
        t.minerBond = minerBond;
        t.committeeSize = committeeSize;
        t.minGainBps = minGainBps;
        t.toleranceBps = toleranceBps;
        t.verifierFeeBps = verifierFeeBps;
        t.phase = Phase.Open;
        t.commitEnd = uint64(block.timestamp + windows[0]);
        t.revealEnd = t.commitEnd + windows[1];
        t.evalRevealEnd = t.revealEnd + windows[2];
        t.scoreCommitWindow = windows[3];
        t.scoreRevealWindow = windows[4];
        t.evalCommitment = evalCommitment;
        t.specCid = specCid;
        emit TaskCreated(taskId, msg.sender, specCid, msg.value, minerBond, committeeSize);
    }

    /// @notice Reveal the eval set after the miners' reveal window (the owner only).
    function revealEval(uint256 taskId, string calldata evalCid, bytes32 salt) external {
        Task storage t = _task(taskId);
        if (msg.sender != t.owner) revert NotOwner();
        if (block.timestamp <= t.revealEnd) revert WindowNotOpen("evalReveal");
        if (block.timestamp > t.evalRevealEnd) revert WindowClosed("evalReveal");
        if (bytes(t.evalCid).length != 0) revert AlreadyRevealed();
        if (keccak256(abi.encode(evalCid, salt)) != t.evalCommitment || bytes(evalCid).length == 0) revert BadReveal();
        t.evalCid = evalCid;
        emit EvalRevealed(taskId, evalCid);
    }

    // ------------------------------------------------------------------ miners
    /// @notice Commit to a bundle CID, bonding `minerBond`. commitment =
    /// keccak256(abi.encode(cid, salt, msg.sender, taskId, block.chainid, address(this))).
    /// The submission's index is in the `Committed` event; reveal with it.
    function commit(uint256 taskId, bytes32 commitment) external payable {
        Task storage t = _task(taskId);
        if (block.timestamp > t.commitEnd) revert WindowClosed("commit");
        if (msg.value != t.minerBond) revert WrongValue(t.minerBond, msg.value);
        uint256 index = t.submissionCount;
        if (index >= MAX_SUBMISSIONS) revert TooManySubmissions();
        t.submissionCount = uint8(index + 1);
        _submissions[taskId][index] = Submission(bytes24(commitment), uint56(block.number), false);
        emit Committed(taskId, msg.sender, index);
    }

    /// @notice Reveal the CID committed at `index` (after the commit's block, inside the window).
    function reveal(uint256 taskId, uint256 index, string calldata cid, bytes32 salt) external {
        Task storage t = _task(taskId);
        if (block.timestamp > t.revealEnd) revert WindowClosed("reveal");
        if (index >= t.submissionCount) revert NotSubmitted();
        Submission storage s = _submissions[taskId][index];
        if (s.revealed) revert AlreadyRevealed();
        if (block.number <= s.commitBlock) revert SameBlock();
        if (bytes(cid).length == 0 || bytes(cid).length > 128) revert BadReveal();
        bytes32 expected = keccak256(abi.encode(cid, salt, msg.sender, taskId, block.chainid, address(this)));
        if (bytes24(expected) != s.data) revert BadReveal();
        bytes32 key = keccak256(bytes(cid));
        if (cidUsed[taskId][key]) revert DuplicateCid();
        cidUsed[taskId][key] = true;
        s.data = bytes24(bytes20(msg.sender));
        s.revealed = true;
        emit Revealed(taskId, msg.sender, index, cid);
    }

    // ------------------------------------------------------------------ verifiers
    /// @notice Register (first call) or add stake. Resets any pending unbonding.
    function stake() external payable {
        Verifier storage v = verifiers[msg.sender];
        if (!v.registered) {
            if (verifierList.length >= MAX_VERIFIERS) revert TooManyVerifiers();
            v.registered = true;
            verifierList.push(msg.sender);
        }
        v.stake += uint128(msg.value);
        if (v.stake < MIN_STAKE) revert WrongValue(MIN_STAKE, v.stake);
        v.unbondAt = 0;
        v.lastStakeBlock = uint64(block.number);
        emit Staked(msg.sender, msg.value, v.stake);
    }

    /// @notice Start unbonding: no new committees; stake leaves after UNBONDING_DELAY.
    function requestUnbond() external {
        Verifier storage v = verifiers[msg.sender];
        if (!v.registered) revert NotEligible("not registered");
        v.unbondAt = uint64(block.timestamp + UNBONDING_DELAY);
        v.lastStakeBlock = uint64(block.number);
        emit UnbondRequested(msg.sender, v.unbondAt);
    }

    /// @notice After unbonding and outside every committee, move the whole stake to claimable.
    function withdrawStake() external {
        Verifier storage v = verifiers[msg.sender];
        if (v.unbondAt == 0 || block.timestamp < v.unbondAt) revert StakeFrozen("unbonding");
        if (v.lockedTasks != 0) revert StakeFrozen("in a committee");
        uint256 amount = v.stake;
        _removeVerifier(msg.sender);
        delete verifiers[msg.sender];
        claimable[msg.sender] += amount;
        emit StakeWithdrawn(msg.sender, amount);
    }

    /// @notice Fix the block whose hash will seed the committee draw.
    function requestDraw(uint256 taskId) external {
        Task storage t = _task(taskId);
        if (t.phase != Phase.Open) revert WrongPhase(taskId, "Open");
        if (bytes(t.evalCid).length == 0) revert WindowNotOpen("draw: eval set not revealed");
        // a seed block older than 256 blocks has no hash: allow a fresh request then
        if (t.seedBlock != 0 && block.number <= t.seedBlock + 256) revert WrongPhase(taskId, "draw requested");
        t.seedBlock = uint64(block.number + DRAW_DELAY_BLOCKS);
        emit DrawRequested(taskId, t.seedBlock);
    }

    /// @notice Draw a stake-weighted committee from blockhash(seedBlock). The post-merge
    /// block hash commits to that block's prevrandao; its proposer has ~1 bit of bias.
    /// Excluded: unbonding verifiers, stakes changed after the request, miners of this task.
    function drawCommittee(uint256 taskId) external {
        Task storage t = _task(taskId);
        if (t.phase != Phase.Open || t.seedBlock == 0) revert WrongPhase(taskId, "draw requested");
        if (block.number <= t.seedBlock) revert WindowNotOpen("draw: seed block not mined");
        bytes32 seed = blockhash(t.seedBlock);
        if (seed == bytes32(0)) revert WindowClosed("draw: seed block too old, request again");
        (address[] memory pool, uint256[] memory weight, uint256 total, uint256 eligible) = _eligible(taskId, t);
        uint256 k = t.committeeSize;
        if (eligible < k) revert TooFewVerifiers(eligible, k);
        address[] memory members = new address[](k);
        for (uint256 j; j < k; ++j) {
            uint256 r = uint256(keccak256(abi.encode(seed, taskId, j))) % total;
            uint256 i;
            while (r >= weight[i]) {
                r -= weight[i];
                ++i;
            }
            members[j] = pool[i];
            total -= weight[i];
            weight[i] = 0; // without replacement
            _committee[taskId].push(Member(pool[i], false, bytes32(0)));
            verifiers[pool[i]].lockedTasks += 1;
        }
        t.phase = Phase.Drawn;
        t.scoreCommitEnd = uint64(block.timestamp + t.scoreCommitWindow);
        t.scoreRevealEnd = t.scoreCommitEnd + t.scoreRevealWindow;
        emit CommitteeDrawn(taskId, members, t.scoreCommitEnd, t.scoreRevealEnd);
    }

    function _eligible(uint256 taskId, Task storage t)
        private view returns (address[] memory pool, uint256[] memory weight, uint256 total, uint256 eligible)
    {
        uint256 ns = t.submissionCount;
        address[] memory miners = new address[](ns);
        for (uint256 s; s < ns; ++s) miners[s] = _minerOf(_submissions[taskId][s]);
        uint256 n = verifierList.length;
        pool = new address[](n);
        weight = new uint256[](n);
        uint256 cutoff = t.seedBlock - DRAW_DELAY_BLOCKS;
        for (uint256 i; i < n; ++i) {
            address a = verifierList[i];
            Verifier storage v = verifiers[a];
            if (v.unbondAt != 0 || v.lastStakeBlock >= cutoff || v.stake < MIN_STAKE) continue;
            bool mined;
            for (uint256 s; s < ns && !mined; ++s) mined = miners[s] == a;
            if (mined) continue; // a verifier never scores its own submission
            pool[eligible] = a;
            weight[eligible] = v.stake;
            total += v.stake;
            ++eligible;
        }
    }

    /// @notice Commit to a score vector as committee member `memberIndex`: keccak256(abi.encode(
    /// scores, salt, msg.sender, taskId, block.chainid, address(this))), one score per submission.
    function commitScores(uint256 taskId, uint256 memberIndex, bytes32 commitment) external {
        Task storage t = _task(taskId);
        if (t.phase != Phase.Drawn) revert WrongPhase(taskId, "Drawn");
        if (block.timestamp > t.scoreCommitEnd) revert WindowClosed("scoreCommit");
        Member storage m = _member(taskId, memberIndex);
        if (m.commitment != bytes32(0)) revert AlreadySubmitted();
        m.commitment = commitment;
        emit ScoresCommitted(taskId, msg.sender);
    }

    /// @notice Reveal the committed score vector (signed gain in bps, or INVALID per submission).
    function revealScores(uint256 taskId, uint256 memberIndex, int32[] calldata scores, bytes32 salt) external {
        Task storage t = _task(taskId);
        if (t.phase != Phase.Drawn) revert WrongPhase(taskId, "Drawn");
        if (block.timestamp <= t.scoreCommitEnd) revert WindowNotOpen("scoreReveal");
        if (block.timestamp > t.scoreRevealEnd) revert WindowClosed("scoreReveal");
        Member storage m = _member(taskId, memberIndex);
        if (m.commitment == bytes32(0)) revert NotSubmitted();
        if (m.revealed) revert AlreadyRevealed();
        if (scores.length != t.submissionCount) revert BadParams("scores length");
        bytes32 expected = keccak256(abi.encode(scores, salt, msg.sender, taskId, block.chainid, address(this)));
        if (expected != m.commitment) revert BadReveal();
        m.revealed = true;
        mapping(uint256 => uint256) storage words = _scoreWords[taskId][memberIndex];
        for (uint256 w; w * 8 < scores.length; ++w) {
            uint256 word;
            for (uint256 i; i < 8 && w * 8 + i < scores.length; ++i) {
                word |= uint256(uint32(scores[w * 8 + i])) << (32 * i);
            }
            words[w] = word;
        }
        emit ScoresRevealed(taskId, msg.sender, scores);
    }

    // ------------------------------------------------------------------ settlement
    /// @notice Settle a task (anyone). Paths:
    /// (a) eval set never revealed: bounty split equally among revealed miners, their bonds back;
    /// (b) committee revealed below quorum: slash the silent, redraw once, else refund the owner
    ///     and return revealed miners' bonds;
    /// (c) eval revealed but no committee could be drawn for MAX_WINDOW: as (b)'s refund;
    /// (d) normal: median per submission; see README "Settlement rules".
    function finalize(uint256 taskId) external nonReentrant {
        Task storage t = _task(taskId);
        if (t.phase == Phase.Finalized) revert WrongPhase(taskId, "not Finalized");
        if (t.phase == Phase.Open) {
            if (bytes(t.evalCid).length != 0) {
                if (block.timestamp <= uint256(t.evalRevealEnd) + MAX_WINDOW) revert WindowNotOpen("finalize");
                _refund(taskId, t, "no committee");
            } else {
                if (block.timestamp <= t.evalRevealEnd) revert WindowNotOpen("finalize");
                _payWithoutEval(taskId, t);
            }
            return;
        }
        if (block.timestamp <= t.scoreRevealEnd) revert WindowNotOpen("finalize");
        Member[] storage members = _committee[taskId];
        uint256 k = members.length;
        uint256 revealed;
        for (uint256 j; j < k; ++j) if (members[j].revealed) ++revealed;
        if (revealed * 2 <= k) {
            uint256 pot = _slashSilent(taskId, members);
            _releaseCommittee(taskId);
            _credit(t.owner, taskId, pot, "slashed stakes");
            if (t.redraws < MAX_REDRAWS) {
                t.redraws += 1;
                t.phase = Phase.Open;
                t.seedBlock = 0;
                delete _committee[taskId]; // bounded by MAX_COMMITTEE
                emit Redrawn(taskId, t.redraws);
                return;
            }
            _refund(taskId, t, "too few verifiers");
            return;
        }
        _settle(taskId, t, members, k);
    }

    function _settle(uint256 taskId, Task storage t, Member[] storage members, uint256 k) private {
        (int32[] memory med, uint256[] memory w, uint256 totalWeight, uint256 forfeited) =
            _medianScores(taskId, t, members, k);
        _medians[taskId] = med;
        uint256 verifierPot = uint256(t.bounty) * t.verifierFeeBps / 10000;
        uint256 minerPot = t.bounty - verifierPot;
        // effects only: claimable balances are credited; payouts are pulled with withdraw()
        uint256 paid = _payMiners(taskId, t, med, w, totalWeight, minerPot);
        _payVerifiers(taskId, t, members, med, verifierPot + forfeited, minerPot - paid, paid);
        _releaseCommittee(taskId);
        t.phase = Phase.Finalized;
        t.bounty = 0;
    }

    /// @dev judge, slash and pay the committee; the owner gets unaccepted bounty, rounding
    /// dust and any pot nobody earned
    function _payVerifiers(uint256 taskId, Task storage t, Member[] storage members, int32[] memory med,
        uint256 pot, uint256 unpaid, uint256 paid) private
    {
        (address[] memory agreeing, uint256 na, uint256 slashed) = _judgeVerifiers(taskId, t, members, med);
        pot += slashed;
        uint256 per = na == 0 ? 0 : pot / na;
        for (uint256 j; j < na; ++j) _credit(agreeing[j], taskId, per, "verifier fee");
        _credit(t.owner, taskId, unpaid + pot - per * na, "refund");
        emit Finalized(taskId, paid, per * na, unpaid + pot - per * na);
    }

    /// @dev per revealed submission: the lower median of the revealed scores; acceptance weights
    function _medianScores(uint256 taskId, Task storage t, Member[] storage members, uint256 k)
        private view returns (int32[] memory med, uint256[] memory w, uint256 totalWeight, uint256 forfeited)
    {
        uint256 ns = t.submissionCount;
        med = new int32[](ns);
        w = new uint256[](ns);
        int32[] memory col = new int32[](k);
        for (uint256 s; s < ns; ++s) {
            if (!_submissions[taskId][s].revealed) {
                forfeited += t.minerBond; // unrevealed commits forfeit their bond
                continue;
            }
            uint256 c;
            for (uint256 j; j < k; ++j) {
                if (members[j].revealed) col[c++] = _score(taskId, j, s);
            }
            med[s] = _median(col, c);
            if (med[s] == INVALID) {
                forfeited += t.minerBond;
            } else if (med[s] >= t.minGainBps && med[s] > 0) {
                w[s] = uint256(uint32(med[s]));
                totalWeight += w[s];
            }
        }
    }

    /// @dev verifiers agree (within tolerance on every revealed submission) or are slashed
    function _judgeVerifiers(uint256 taskId, Task storage t, Member[] storage members, int32[] memory med)
        private returns (address[] memory agreeing, uint256 na, uint256 slashed)
    {
        uint256 k = members.length;
        uint256 ns = t.submissionCount;
        agreeing = new address[](k);
        for (uint256 j; j < k; ++j) {
            Member storage m = members[j];
            if (!m.revealed) {
                slashed += _slash(m.verifier, taskId, "did not reveal");
                continue;
            }
            bool ok = true;
            for (uint256 s; s < ns && ok; ++s) {
                if (_submissions[taskId][s].revealed) ok = _within(_score(taskId, j, s), med[s], t.toleranceBps);
            }
            if (ok) agreeing[na++] = m.verifier;
            else slashed += _slash(m.verifier, taskId, "outside tolerance");
        }
    }

    function _payMiners(uint256 taskId, Task storage t, int32[] memory med, uint256[] memory w, uint256 totalWeight,
        uint256 minerPot) private returns (uint256 paid)
    {
        uint256 ns = t.submissionCount;
        for (uint256 s; s < ns; ++s) {
            Submission storage sub = _submissions[taskId][s];
            if (!sub.revealed) continue;
            uint256 reward = totalWeight == 0 ? 0 : minerPot * w[s] / totalWeight;
            uint256 bond = med[s] == INVALID ? 0 : t.minerBond;
            paid += reward;
            _credit(_minerOf(sub), taskId, reward + bond, "reward+bond");
            emit SubmissionSettled(taskId, s, _minerOf(sub), med[s], w[s] > 0, reward, bond);
        }
    }

    function _payWithoutEval(uint256 taskId, Task storage t) private {
        uint256 ns = t.submissionCount;
        uint256 nr;
        for (uint256 s; s < ns; ++s) if (_submissions[taskId][s].revealed) ++nr;
        uint256 bounty = t.bounty;
        uint256 share = nr == 0 ? 0 : bounty / nr;
        uint256 forfeited;
        t.bounty = 0;
        t.phase = Phase.Finalized;
        for (uint256 s; s < ns; ++s) {
            Submission storage sub = _submissions[taskId][s];
            if (sub.revealed) {
                _credit(_minerOf(sub), taskId, share + t.minerBond, "no eval reveal: bounty share+bond");
                emit SubmissionSettled(taskId, s, _minerOf(sub), 0, true, share, t.minerBond);
            } else {
                forfeited += t.minerBond;
            }
        }
        // with no revealed miner the owner gets the bounty back (nobody did work)
        uint256 ownerRefund = bounty - share * nr + forfeited;
        _credit(t.owner, taskId, ownerRefund, "refund");
        emit Finalized(taskId, share * nr, 0, ownerRefund);
    }

    function _refund(uint256 taskId, Task storage t, string memory why) private {
        uint256 ns = t.submissionCount;
        uint256 forfeited;
        for (uint256 s; s < ns; ++s) {
            Submission storage sub = _submissions[taskId][s];
            if (sub.revealed) _credit(_minerOf(sub), taskId, t.minerBond, "bond returned");
            else forfeited += t.minerBond;
        }
        uint256 amount = uint256(t.bounty) + forfeited;
        t.bounty = 0;
        t.phase = Phase.Finalized;
        _credit(t.owner, taskId, amount, why);
        emit Finalized(taskId, 0, 0, amount);
    }

    function _slashSilent(uint256 taskId, Member[] storage members) private returns (uint256 pot) {
        for (uint256 j; j < members.length; ++j) {
            if (!members[j].revealed) pot += _slash(members[j].verifier, taskId, "did not reveal");
        }
    }

    function _releaseCommittee(uint256 taskId) private {
        Member[] storage members = _committee[taskId];
        for (uint256 j; j < members.length; ++j) verifiers[members[j].verifier].lockedTasks -= 1;
    }

    // ------------------------------------------------------------------ withdraw
    /// @notice Withdraw everything credited to the caller (checks, effects, then the transfer).
    function withdraw() external nonReentrant {
        uint256 amount = claimable[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        claimable[msg.sender] = 0;
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
        emit Withdrawn(msg.sender, amount);
    }

    // ------------------------------------------------------------------ views
    /// @notice A task's parameters, windows, escrowed bounty and phase.
    function getTask(uint256 taskId) external view returns (Task memory) {
        return _task(taskId);
    }

    /// @notice 0 none, 1 commit, 2 reveal, 3 eval reveal, 4 awaiting draw, 5 score commit,
    /// 6 score reveal, 7 awaiting finalize, 8 finalized
    function phaseOf(uint256 taskId) external view returns (uint8) {
        Task storage t = _tasks[taskId];
        if (t.phase == Phase.None) return 0;
        if (t.phase == Phase.Finalized) return 8;
        if (t.phase == Phase.Drawn) {
            if (block.timestamp <= t.scoreCommitEnd) return 5;
            if (block.timestamp <= t.scoreRevealEnd) return 6;
            return 7;
        }
        if (block.timestamp <= t.commitEnd) return 1;
        if (block.timestamp <= t.revealEnd) return 2;
        if (block.timestamp <= t.evalRevealEnd && bytes(t.evalCid).length == 0) return 3;
        return bytes(t.evalCid).length == 0 ? 7 : 4;
    }

    /// @notice Submissions in commit order: miner (zero until revealed) and whether revealed.
    /// CIDs are in the `Revealed` events.
    function getSubmissions(uint256 taskId) external view returns (address[] memory miners, bool[] memory revealed) {
        uint256 ns = _task(taskId).submissionCount;
        miners = new address[](ns);
        revealed = new bool[](ns);
        for (uint256 s; s < ns; ++s) {
            Submission storage sub = _submissions[taskId][s];
            miners[s] = _minerOf(sub);
            revealed[s] = sub.revealed;
        }
    }

    /// @notice The drawn committee: verifier, whether it revealed, its score commitment.
    function getCommittee(uint256 taskId) external view returns (Member[] memory) {
        return _committee[taskId];
    }

    /// @notice a committee member's revealed score vector (empty until revealed)
    function getScores(uint256 taskId, uint256 memberIndex) external view returns (int32[] memory out) {
        Member[] storage members = _committee[taskId];
        if (memberIndex >= members.length || !members[memberIndex].revealed) return out;
        uint256 ns = _tasks[taskId].submissionCount;
        out = new int32[](ns);
        for (uint256 s; s < ns; ++s) out[s] = _score(taskId, memberIndex, s);
    }

    /// @notice Median score per submission, set by finalize (INVALID = type(int32).min).
    function getMedians(uint256 taskId) external view returns (int32[] memory) {
        return _medians[taskId];
    }

    /// @notice Number of registered verifiers (bounded by MAX_VERIFIERS).
    function verifierCount() external view returns (uint256) {
        return verifierList.length;
    }

    /// @notice A verifier's stake (shown apart from its claimable earnings).
    function stakeOf(address a) external view returns (uint256) {
        return verifiers[a].stake;
    }

    // ------------------------------------------------------------------ helpers
    function _task(uint256 taskId) private view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.phase == Phase.None) revert UnknownTask(taskId);
    }

    function _member(uint256 taskId, uint256 memberIndex) private view returns (Member storage m) {
        Member[] storage members = _committee[taskId];
        if (memberIndex >= members.length || members[memberIndex].verifier != msg.sender) revert NotMember();
        m = members[memberIndex];
    }

    function _minerOf(Submission storage s) private view returns (address) {
        return s.revealed ? address(bytes20(s.data)) : address(0);
    }

    function _score(uint256 taskId, uint256 member, uint256 s) private view returns (int32) {
        return int32(uint32(_scoreWords[taskId][member][s / 8] >> (32 * (s % 8))));
    }

    function _credit(address to, uint256 taskId, uint256 amount, string memory reason) private {
        if (amount == 0) return;
        claimable[to] += amount;
        emit Credited(to, taskId, amount, reason);
    }

    /// @dev moves SLASH_BPS of the stake out of the stake; the caller credits it onward
    function _slash(address verifier, uint256 taskId, string memory reason) private returns (uint256 amount) {
        Verifier storage v = verifiers[verifier];
        amount = uint256(v.stake) * SLASH_BPS / 10000;
        v.stake -= uint128(amount);
        emit Slashed(verifier, taskId, amount, reason);
    }

    function _removeVerifier(address a) private {
        uint256 n = verifierList.length;
        for (uint256 i; i < n; ++i) {
            if (verifierList[i] == a) {
                verifierList[i] = verifierList[n - 1];
                verifierList.pop();
                return;
            }
        }
    }

    function _within(int32 score, int32 median, uint256 tol) private pure returns (bool) {
        if (score == INVALID || median == INVALID) return score == median;
        int256 d = int256(score) - int256(median);
        return (d < 0 ? -d : d) <= int256(tol);
    }

    /// @notice the lower median of the first `n` values (insertion sort; n <= MAX_COMMITTEE)
    function _median(int32[] memory a, uint256 n) internal pure returns (int32) {
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
}
