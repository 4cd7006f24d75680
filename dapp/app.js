// CoDream dapp: reads the market directly from the chain (no backend of its own). Protocol facts
// (phase names, the INVALID score) come from the server's /config.json, never copied here.
//
// Every string that comes from the chain or IPFS (CIDs, reasons, addresses) reaches the page as a
// text node or an encoded URL component, never as HTML: see el() and gatewayUrl().
import { ethers } from "/vendor/ethers.min.js";

const $ = (id) => document.getElementById(id);
const short = (a) => a ? `${a.slice(0, 8)}…${a.slice(-4)}` : "–";

/** Wei as people read it: "0.4486 ETH" (at most 4 decimals), "−0.01 ETH" for losses. */
function eth(wei, signed = false) {
  const v = BigInt(wei);
  if (v === 0n) return "0 ETH";
  const abs = v < 0n ? -v : v;
  let text = Number(ethers.formatEther(abs)).toFixed(4).replace(/\.?0+$/, "");
  if (text === "0") text = Number(ethers.formatEther(abs)).toPrecision(2);
  return `${v < 0n ? "−" : signed ? "+" : ""}${text} ETH`;
}

/** Seconds as people read them: "45 s", "57 min", "2 h 5 min", "3 d 4 h". */
function duration(s) {
  s = Math.max(0, Math.round(s));
  if (s < 90) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) { const m = Math.round(s / 60), h = Math.floor(m / 60); return m % 60 ? `${h} h ${m % 60} min` : `${h} h`; }
  const h = Math.round(s / 3600), d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

const same = (a, b) => !!a && !!b && a.toLowerCase() === b.toLowerCase();

let cfg, provider, market, registry, lens, appeals, signer = null, account = null, selectedTask = null, busy = false,
  again = false;

/** Build an element; string/number children become text nodes (never parsed as HTML). */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.dataset[k.slice(5).replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = String(v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

/** Replace a table body's rows; an empty list shows one muted row saying so. */
function fillRows(body, rows, cols, empty) {
  body.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: cols, class: "muted" }, empty))]));
}

/** A link into the IPFS gateway for a CID taken from the chain: the CID is one encoded path segment. */
function gatewayUrl(cid) {
  return cfg.gateway + encodeURIComponent(cid);
}

function cidLink(cid) {
  return cid ? el("a", { href: gatewayUrl(cid), target: "_blank", rel: "noopener", title: cid }, short(cid)) : "–";
}

function banner(msg, kind = "error") {
  const b = $("banner");
  if (!msg) { b.classList.add("hidden"); return; }
  b.textContent = msg;
  b.className = `banner ${kind === "info" ? "info" : ""}`;
}

async function boot() {
  try {
    cfg = await (await fetch("/config.json")).json();
  } catch (e) {
    return banner("Cannot load /config.json: start the page with `codream dapp`.");
  }
  if (cfg.error) return banner(cfg.error);
  provider = new ethers.JsonRpcProvider(cfg.rpcUrl, undefined, { staticNetwork: true, polling: true });
  provider.pollingInterval = 1000;
  market = new ethers.Contract(cfg.market, cfg.abi, provider);
  registry = new ethers.Contract(cfg.registry, cfg.registryAbi, provider);
  lens = new ethers.Contract(cfg.lens, cfg.lensAbi, provider);
  appeals = new ethers.Contract(cfg.appeals, cfg.appealsAbi, provider);
  $("market").textContent = cfg.market;
  for (const [i, d] of (cfg.devAccounts || []).entries()) {
    $("dev-account").append(el("option", { value: i }, `${d.label} ${d.address}`));
  }
  if (!cfg.devAccounts?.length) $("mode").querySelector('option[value="dev"]').disabled = true;
  $("mode").onchange = modeChanged;
  $("connect-btn").onclick = connect;
  $("claim-btn").onclick = claim;
  modeChanged();
  // A chain that is down, wrong or not deployed yet may be fixed while the page is open:
  // keep checking (the banner says what is wrong) and start as soon as it is right.
  while (!(await checkChain())) await new Promise((r) => setTimeout(r, 5000));
  await refresh();
  provider.on("block", () => refresh().catch(() => {}));
  setInterval(() => { checkChain().catch(() => {}); }, 5000);
}

function modeChanged() {
  const m = $("mode").value;
  $("dev-wrap").classList.toggle("hidden", m !== "dev");
  $("addr-wrap").classList.toggle("hidden", m !== "read");
  $("connect-btn").textContent = m === "read" ? "Show" : "Connect";
}

async function checkChain() {
  try {
    const [net, code] = await Promise.all([provider.getNetwork(), provider.getCode(cfg.market)]);
    if (Number(net.chainId) !== cfg.chainId) {
      banner(`The RPC at ${cfg.rpcUrl} is chain ${net.chainId}, but the deployment record is for chain ${cfg.chainId}.`);
      return false;
    }
    if (code === "0x") {
      banner(`No CoDreamMarket contract at ${cfg.market} on chain ${cfg.chainId}: the devnet was restarted ` +
        `or the deployment record is for another network. Run \`codream devnet up\`; retrying every 5 s.`);
      return false;
    }
    $("net").textContent = `chain ${cfg.chainId} · ${cfg.rpcUrl}`;
    if ($("banner").dataset.sticky !== "1") banner(null);
    return true;
  } catch (e) {
    banner(`Cannot reach the chain at ${cfg.rpcUrl} (${e.shortMessage || e.message}). Is the node running? ` +
      "Retrying every 5 s.");
    return false;
  }
}

async function connect() {
  const m = $("mode").value;
  signer = null;
  $("banner").dataset.sticky = "";
  try {
    if (m === "read") {
      const a = $("address").value.trim();
      if (!ethers.isAddress(a)) return banner(`"${a}" is not an Ethereum address.`);
      account = ethers.getAddress(a);
    } else if (m === "dev") {
      const d = cfg.devAccounts[Number($("dev-account").value)];
      signer = new ethers.Wallet(d.privateKey, provider);
      account = signer.address;
    } else {
      if (!window.ethereum) return banner("No injected wallet found (window.ethereum). Install one, or use read-only mode.");
      const bp = new ethers.BrowserProvider(window.ethereum);
      await bp.send("eth_requestAccounts", []);
      const net = await bp.getNetwork();
      if (Number(net.chainId) !== cfg.chainId) {
        $("banner").dataset.sticky = "1";
        banner(`Your wallet is on chain ${net.chainId}; switch it to chain ${cfg.chainId} (${cfg.rpcUrl}).`);
        try { await bp.send("wallet_switchEthereumChain", [{ chainId: "0x" + cfg.chainId.toString(16) }]); } catch (_) { return; }
      }
      signer = await bp.getSigner();
      account = await signer.getAddress();
    }
  } catch (e) {
    return banner(`Could not connect: ${e.shortMessage || e.message}`);
  }
  $("account").classList.remove("hidden");
  $("acct-addr").textContent = account;
  await refresh();
}

async function refresh() {
  if (busy) { again = true; return; }  // one refresh at a time; a request meanwhile runs after it
  busy = true;
  try {
    do {
      again = false;
      await renderTasks();
      if (account) await renderAccount();
      if (selectedTask) await renderTask(selectedTask);
    } while (again);
  } catch (e) {
    banner(`Reading the chain failed: ${e.shortMessage || e.message}`);
  } finally { busy = false; }
}

async function logs(name, ...args) {
  return market.queryFilter(market.filters[name](...args), cfg.deployBlock);
}

async function appealLogs(name, ...args) {
  return appeals.queryFilter(appeals.filters[name](...args), cfg.deployBlock);
}

function scoreText(v) {
  return v === cfg.protocol.invalid ? "INVALID" : v === cfg.protocol.noEval ? "NO_EVAL" : `${v} bps`;
}

async function renderTasks() {
  const [count, block] = await Promise.all([market.taskCount(), provider.getBlock("latest")]);
  const n = Number(count), now = block.timestamp;
  const rows = [];
  for (let id = n; id >= 1; id--) {
    const [t, ph] = await Promise.all([market.getTask(id), market.phaseOf(id)]);
    const end = cfg.protocol.deadlines[Number(ph)];  // the getTask field closing this phase, if any
    const left = end !== undefined ? Number(t[end]) - now : null;
    rows.push(el("tr", { class: `clickable${selectedTask === id ? " selected" : ""}`, "data-task": id,
      title: "show this task's submissions and committee",
      onclick: () => { selectedTask = id; refresh(); } },
    el("td", {}, id), el("td", {}, cfg.protocol.phases[Number(ph)] ?? `phase ${ph}`),
    el("td", {}, left === null ? "–" : duration(left)), el("td", {}, eth(t.bounty)),
    el("td", {}, t.submissionCount), el("td", {}, `${t.seats} × ${t.seatsPerSubmission}`),
    el("td", { class: "mono" }, cidLink(t.specCid)), el("td", {}, el("span", { class: "link" }, "details ›"))));
  }
  fillRows($("tasks").querySelector("tbody"), rows, 8, "no tasks yet");
}

async function renderTask(id) {
  $("task").classList.remove("hidden");
  $("task-id").textContent = id;
  const t = await market.getTask(id);
  const n = Number(t.submissionCount);
  const [[miners, revealed], [result, status], revealedEv, settledEv, seatsView, seatEv, owners, phase, verdictsView,
    burnedEv, appealCount, settlement] = await Promise.all([
    lens.getSubmissions(id, 0, n), lens.results(id, 0, n), logs("Revealed", id), logs("SubmissionSettled", id),
    lens.getSeats(id), logs("SeatSettled", id), market.owners(id), market.phaseOf(id), lens.ownerVerdicts(id),
    logs("Burned", id), appeals.appealCount(id), market.getSettlement(id)]);
  const cids = {}, settled = {};
  for (const e of revealedEv) cids[Number(e.args.index)] = e.args.cid;
  for (const e of settledEv) settled[Number(e.args.index)] = e.args;
  $("task-params").textContent = `bounty ${eth(t.bounty)} from ${owners.length} owner(s) · miner bond ${eth(t.minerBond)}` +
    ` · min gain ${t.minGainBps} bps · tolerance ${t.toleranceBps} bps · ${t.seats} seats, ${t.seatsPerSubmission} score each submission`;
  renderOwners(owners, verdictsView);
  const statuses = cfg.protocol.statuses;
  const rows = [];
  for (let i = 0; i < miners.length; i++) {
    const st = statuses[Number(status[i])], s = settled[i], cid = cids[i];
    const miner = miners[i] === ethers.ZeroAddress ? null : miners[i];
    const settledRes = ["accepted", "rejected", "invalid", "unresolved", "unscored"].includes(st);
    const cls = { accepted: "ok", rejected: "warn", invalid: "bad", unresolved: "warn", unscored: "warn",
      unrevealed: "bad" }[st] || "";
    const why = cfg.protocol.statusNotes[st] || "";
    rows.push(el("tr", { class: same(miner, account) ? "mine" : "" },
      el("td", {}, i), el("td", { class: "mono", title: miner || "" }, short(miner)),
      el("td", { class: "mono" }, cidLink(cid)),
      el("td", {}, settledRes && cid ? scoreText(Number(result[i])) : "–"),
      el("td", {}, el("span", { class: cls }, st), why ? el("div", { class: "muted small" }, why) : null),
      el("td", {}, s ? eth(s.reward) : "–"), el("td", {}, s ? eth(s.bondReturned) : "–"),
      el("td", {}, cid ? el("button", { "data-cid": cid, onclick: () => preview(cid) }, "preview") : "")));
  }
  fillRows($("subs").querySelector("tbody"), rows, 8, "no submissions yet");
  renderHarvest(id, t, Number(phase), owners, miners, status, result, cids, settled);
  const [verifiers, committed, revealedSeats] = seatsView;
  const bySeat = {};
  for (const e of seatEv) bySeat[Number(e.args.seat)] = e.args;
  fillRows($("seats").querySelector("tbody"), verifiers.map((v, j) => {
    const e = bySeat[j];
    const outcome = !e ? "–" : e.faulty ? el("span", { class: "bad" }, `faulty: slashed ${eth(e.slashed)} (burned)`)
      : el("span", { class: "ok" }, `agreed ${e.agree}×`);
    return el("tr", { class: same(v, account) ? "mine" : "" }, el("td", {}, j),
      el("td", { class: "mono", title: v }, short(v)), el("td", {}, committed[j] ? "yes" : "no"),
      el("td", {}, revealedSeats[j] ? "yes" : "no"), el("td", {}, outcome));
  }), 5, "no committee drawn yet");
  await renderAppeals(id, Number(appealCount));
  const burned = burnedEv.map((e) => el("li", {}, `${eth(e.args.amount)}: ${cfg.protocol.burnReasons[Number(e.args.reason)]}`));
  $("burns").replaceChildren(...(burned.length ? burned : [el("li", { class: "muted" }, "nothing burned")]));
  $("settlement").textContent = Number(phase) === cfg.protocol.finalized
    ? `funded by good and unjudged owners: ${eth(settlement.funded)} · miners paid ${eth(settlement.minersPaid)} · ` +
      `verifiers paid ${eth(settlement.potPaid)} · burned ${eth(settlement.burned)}` +
      (settlement.failed ? " · the round failed before its draw: every bond is reclaimable" : "")
    : "not settled yet";
}

/** Each owner: contribution, declared teacher accuracy, and the verdict on its eval set. */
function renderOwners(owners, verdictsView) {
  const [verdicts, ok, notOk] = verdictsView;
  fillRows($("owners").querySelector("tbody"), owners.map((o, i) => {
    const v = cfg.protocol.verdicts[Number(verdicts[i])];
    const cls = { good: "ok", faulty: "bad", unjudged: "warn" }[v] || "";
    const note = v === "faulty" ? "contribution burned" : v === "unjudged" ? "refunded like a good owner" : "";
    return el("tr", { class: same(o.addr, account) ? "mine" : "" }, el("td", {}, i),
      el("td", { class: "mono", title: o.addr }, short(o.addr)), el("td", {}, eth(o.contribution)),
      el("td", {}, `${(Number(o.evalAccuracyBps) / 100).toFixed(2)} %`), el("td", {}, o.revealed ? "yes" : "no"),
      el("td", {}, el("span", { class: cls }, v), note ? el("div", { class: "muted small" }, note) : null,
        el("div", { class: "muted small" }, `${ok[i]} OK / ${notOk[i]} not OK`)));
  }), 6, "no owners");
}

/** Every appeal of the task: submission, appellant, deposit, outcome, the two results. */
async function renderAppeals(id, count) {
  const rows = [];
  for (let a = 0; a < count; a++) {
    const x = await appeals.getAppeal(id, a);
    const outcome = cfg.protocol.outcomes[Number(x.outcome)];
    const decided = outcome === "confirmed" || outcome === "overturned";
    rows.push(el("tr", { class: same(x.appellant, account) ? "mine" : "" }, el("td", {}, a), el("td", {}, x.submission),
      el("td", { class: "mono", title: x.appellant }, short(x.appellant)), el("td", {}, eth(x.deposit)),
      el("td", {}, el("span", { class: { overturned: "warn", confirmed: "ok" }[outcome] || "" }, outcome)),
      el("td", {}, decided ? scoreText(Number(x.original)) : "–"),
      el("td", {}, decided ? scoreText(Number(x.result)) : "–")));
  }
  fillRows($("appeals").querySelector("tbody"), rows, 7, "no appeal");
}

/** For a finalized task the viewer owns (any of its owners): the accepted bundles it can harvest
 *  and the command that does it. Everything from the chain goes in as text (el()). */
function renderHarvest(id, t, phase, owners, miners, status, result, cids, settled) {
  const me = owners.find((o) => same(o.addr, account));
  const box = $("harvest");
  if (phase !== cfg.protocol.finalized || !me) { box.classList.add("hidden"); return; }
  const accepted = [];
  for (let i = 0; i < miners.length; i++) {
    if (cfg.protocol.statuses[Number(status[i])] === "accepted" && cids[i]) accepted.push(i);
  }
  const paid = accepted.reduce((a, i) => a + (settled[i] ? settled[i].reward : 0n), 0n);
  $("harvest-summary").textContent = `${accepted.length} accepted bundle(s), ${eth(paid)} paid to their miners; ` +
    `you put in ${eth(me.contribution)} of the ${eth(t.bounty)} bounty (${owners.length} owner(s))`;
  fillRows($("harvest-bundles").querySelector("tbody"), accepted.map((i) => el("tr", { "data-index": i },
    el("td", {}, i), el("td", { class: "mono", title: miners[i] }, short(miners[i])), el("td", { class: "mono" }, cidLink(cids[i])),
    el("td", {}, scoreText(Number(result[i]))), el("td", {}, settled[i] ? eth(settled[i].reward) : "–"))),
  5, "no accepted bundle: nothing to harvest");
  $("harvest-cmd").textContent = accepted.length ? cfg.harvestCommand.replaceAll("{id}", String(id)) : "–";
  box.classList.remove("hidden");
}

async function preview(cid) {
  // the server fetches the bundle (CID verified), checks its header and renders a labelled grid
  const img = $("preview");
  try {
    const res = await fetch(`/preview/${encodeURIComponent(cid)}.png`);
    if (!res.ok) throw new Error(await res.text());
    const url = URL.createObjectURL(await res.blob());
    await new Promise((ok, bad) => { img.onload = ok; img.onerror = () => bad(new Error("not an image")); img.src = url; });
    $("preview-title").textContent = `dreams in ${short(cid)}`;
    $("preview-wrap").classList.remove("hidden");
  } catch (e) {
    banner(`Preview of ${cid} failed: ${e.message}`);
  }
}

async function renderAccount() {
  const [claimable, info, pendingStake, credited, withdrawn, committed, settledMine, seatsMine, created, joined, judged,
    appealed] = await Promise.all([
    market.claimable(account), registry.info(account), registry.pendingOf(account), logs("Credited", account),
    logs("Withdrawn", account), logs("Committed", null, account), logs("SubmissionSettled", null, null, account),
    logs("SeatSettled", null, null, account), logs("TaskCreated", null, account), logs("TaskJoined", null, account),
    logs("OwnerJudged", null, null, account), appealLogs("Appealed")]);
  $("claimable").textContent = eth(claimable);
  $("claimable").dataset.wei = claimable.toString();
  $("stake").textContent = eth(info.stake + pendingStake.amount);
  $("locked").textContent = `${info.lockedSeats} seat(s) in open committees and appeals` +
    (pendingStake.amount > 0n ? ` · ${eth(pendingStake.amount)} warming up until ` +
      new Date(Number(pendingStake.activatesAt) * 1000).toLocaleString() : "") +
    (Number(info.unbondAt) ? ` · unbonding until ${new Date(Number(info.unbondAt) * 1000).toLocaleString()}` : "");
  let pending = 0n;
  const bonds = {};
  for (const e of committed) {
    const t = await market.getTask(e.args.taskId);
    bonds[Number(e.args.taskId)] = t.minerBond;
    const s = await market.getSettlement(e.args.taskId);
    if (Number(await market.phaseOf(e.args.taskId)) !== cfg.protocol.finalized || s.failed) pending += t.minerBond;
  }
  $("pending").textContent = eth(pending);
  const out = withdrawn.reduce((a, e) => a + e.args.amount, 0n);
  $("withdrawn").textContent = eth(out);
  $("withdrawn").dataset.wei = out.toString();
  const settledTx = new Set(settledMine.map((e) => e.transactionHash)), seatTx = new Set(seatsMine.map((e) => e.transactionHash));
  const ownerOf = new Set([...created, ...joined].map((e) => Number(e.args.taskId)));
  const mineAppeals = appealed.filter((e) => same(e.args.appellant, account));
  const what = (e) => settledTx.has(e.transactionHash)
    ? (settledMine.find((x) => x.transactionHash === e.transactionHash).args.reward > 0n ? "reward + bond back" : "bond back")
    : seatTx.has(e.transactionHash) ? "verifier fee"
      : ownerOf.has(Number(e.args.taskId)) ? "owner refund" : "credited";
  const hist = [
    ...credited.map((e) => ({ task: e.args.taskId, amount: e.args.amount, block: e.blockNumber, what: what(e) })),
    ...settledMine.filter((e) => bonds[Number(e.args.taskId)] > e.args.bondReturned).map((e) => ({ task: e.args.taskId,
      amount: -(bonds[Number(e.args.taskId)] - e.args.bondReturned), block: e.blockNumber,
      what: `bond forfeited (${cfg.protocol.statuses[Number(e.args.status)]})` })),
    ...seatsMine.filter((e) => e.args.slashed > 0n).map((e) => ({ task: e.args.taskId, amount: -e.args.slashed,
      block: e.blockNumber, what: `slashed, burned (seat ${e.args.seat})` })),
    ...created.map((e) => ({ task: e.args.taskId, amount: -e.args.bounty, block: e.blockNumber, what: "bounty paid" })),
    ...joined.filter((e) => Number(e.args.ownerIndex) > 0).map((e) => ({ task: e.args.taskId, amount: -e.args.contribution,
      block: e.blockNumber, what: "bounty paid (co-owner)" })),
    ...judged.filter((e) => cfg.protocol.verdicts[Number(e.args.verdict)] === "faulty").map((e) => ({ task: e.args.taskId,
      amount: 0n, block: e.blockNumber, what: "eval set judged faulty: contribution burned" })),
    ...mineAppeals.map((e) => ({ task: e.args.taskId, amount: -e.args.deposit, block: e.blockNumber,
      what: `appeal deposit (submission ${e.args.index})` })),
    ...withdrawn.map((e) => ({ task: "–", amount: e.args.amount, block: e.blockNumber, what: "withdrawn" })),
  ].sort((a, b) => a.block - b.block);
  fillRows($("history").querySelector("tbody"),
    hist.map((h) => el("tr", {}, el("td", {}, h.task), el("td", { class: h.amount < 0n ? "bad" : "" }, eth(h.amount, true)),
      el("td", {}, h.what), el("td", {}, h.block))), 4, "nothing yet");
  $("claim-btn").disabled = !signer || claimable === 0n;
}

async function claim() {
  $("claim-btn").disabled = true;
  $("claim-msg").textContent = "sending…";
  try {
    const tx = await market.connect(signer).withdraw();
    $("claim-msg").textContent = `sent ${short(tx.hash)}, waiting…`;
    await tx.wait();
    $("claim-msg").textContent = `claimed in block ${(await provider.getTransactionReceipt(tx.hash)).blockNumber}`;
  } catch (e) {
    $("claim-msg").textContent = "";
    banner(`Claim failed: ${e.shortMessage || e.message}`);
  }
  await refresh();
}

boot();
