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

let cfg, provider, market, registry, signer = null, account = null, selectedTask = null, busy = false, again = false;

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

function scoreText(v) {
  return v === cfg.protocol.invalid ? "INVALID" : v === cfg.protocol.noEval ? "NO_EVAL" : `${v} bps`;
}

async function renderTasks() {
  const [count, block] = await Promise.all([market.taskCount(), provider.getBlock("latest")]);
  const n = Number(count), now = block.timestamp;
  const rows = [];
  for (let id = n; id >= 1; id--) {
    const [t, ph] = await Promise.all([market.getTask(id), market.phaseOf(id)]);
    const ends = { 1: t.commitEnd, 2: t.revealEnd, 3: t.evalRevealEnd, 5: t.scoreCommitEnd, 6: t.scoreRevealEnd };
    const left = ends[ph] !== undefined ? Number(ends[ph]) - now : null;
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
  const [[miners, revealed], [result, status], revealedEv, settledEv, seatsView, seatEv, owners, phase] = await Promise.all([
    market.getSubmissions(id, 0, n), market.results(id, 0, n), logs("Revealed", id), logs("SubmissionSettled", id),
    market.getSeats(id), logs("SeatSettled", id), market.owners(id), market.phaseOf(id)]);
  const cids = {}, settled = {};
  for (const e of revealedEv) cids[Number(e.args.index)] = e.args.cid;
  for (const e of settledEv) settled[Number(e.args.index)] = e.args;
  $("task-params").textContent = `bounty ${eth(t.bounty)} from ${owners.length} owner(s) · miner bond ${eth(t.minerBond)}` +
    ` · min gain ${t.minGainBps} bps · tolerance ${t.toleranceBps} bps · ${t.seats} seats, ${t.seatsPerSubmission} score each submission`;
  const statuses = cfg.protocol.statuses;
  const rows = [];
  for (let i = 0; i < miners.length; i++) {
    const st = statuses[Number(status[i])], s = settled[i], cid = cids[i];
    const miner = miners[i] === ethers.ZeroAddress ? null : miners[i];
    const settledRes = ["accepted", "rejected", "invalid", "unresolved"].includes(st);
    const cls = { accepted: "ok", rejected: "warn", invalid: "bad", unresolved: "warn", unrevealed: "bad" }[st] || "";
    const why = { accepted: "median ≥ min gain: reward + bond", rejected: "median < min gain: half the bond forfeited",
      invalid: "majority: INVALID bundle: bond forfeited", unresolved: "no majority (or no eval set): equal share + bond",
      unrevealed: "never revealed: bond forfeited" }[st] || "";
    rows.push(el("tr", { class: same(miner, account) ? "mine" : "" },
      el("td", {}, i), el("td", { class: "mono", title: miner || "" }, short(miner)),
      el("td", { class: "mono" }, cidLink(cid)),
      el("td", {}, settledRes ? scoreText(Number(result[i])) : "–"),
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
    const outcome = !e ? "–" : e.faulty ? el("span", { class: "bad" }, `faulty: slashed ${eth(e.slashed)}`)
      : el("span", { class: "ok" }, `agreed ${e.agree}×`);
    return el("tr", { class: same(v, account) ? "mine" : "" }, el("td", {}, j),
      el("td", { class: "mono", title: v }, short(v)), el("td", {}, committed[j] ? "yes" : "no"),
      el("td", {}, revealedSeats[j] ? "yes" : "no"), el("td", {}, outcome));
  }), 5, "no committee drawn yet");
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
  const [claimable, info, credited, withdrawn, committed, settledMine, seatsMine, created, joined] = await Promise.all([
    market.claimable(account), registry.info(account), logs("Credited", account), logs("Withdrawn", account),
    logs("Committed", null, account), logs("SubmissionSettled", null, null, account), logs("SeatSettled", null, null, account),
    logs("TaskCreated", null, account), logs("TaskJoined", null, account)]);
  $("claimable").textContent = eth(claimable);
  $("claimable").dataset.wei = claimable.toString();
  $("stake").textContent = eth(info.stake);
  $("locked").textContent = `${info.lockedSeats} seat(s) in open committees` +
    (Number(info.unbondAt) ? ` · unbonding until ${new Date(Number(info.unbondAt) * 1000).toLocaleString()}` : "");
  let pending = 0n;
  const bonds = {};
  for (const e of committed) {
    const t = await market.getTask(e.args.taskId);
    bonds[Number(e.args.taskId)] = t.minerBond;
    if (Number(await market.phaseOf(e.args.taskId)) !== cfg.protocol.finalized) pending += t.minerBond;
  }
  $("pending").textContent = eth(pending);
  const out = withdrawn.reduce((a, e) => a + e.args.amount, 0n);
  $("withdrawn").textContent = eth(out);
  $("withdrawn").dataset.wei = out.toString();
  const settledTx = new Set(settledMine.map((e) => e.transactionHash)), seatTx = new Set(seatsMine.map((e) => e.transactionHash));
  const hist = [
    ...credited.map((e) => ({ task: e.args.taskId, amount: e.args.amount, block: e.blockNumber,
      what: settledTx.has(e.transactionHash) ? "reward + bond back" : seatTx.has(e.transactionHash) ? "verifier fee" : "credited" })),
    ...settledMine.filter((e) => bonds[Number(e.args.taskId)] > e.args.bondReturned).map((e) => ({ task: e.args.taskId,
      amount: -(bonds[Number(e.args.taskId)] - e.args.bondReturned), block: e.blockNumber,
      what: `bond forfeited (${cfg.protocol.statuses[Number(e.args.status)]})` })),
    ...seatsMine.filter((e) => e.args.slashed > 0n).map((e) => ({ task: e.args.taskId, amount: -e.args.slashed,
      block: e.blockNumber, what: `slashed (seat ${e.args.seat})` })),
    ...created.map((e) => ({ task: e.args.taskId, amount: -e.args.bounty, block: e.blockNumber, what: "bounty paid" })),
    ...joined.filter((e) => Number(e.args.ownerIndex) > 0).map((e) => ({ task: e.args.taskId, amount: -e.args.contribution,
      block: e.blockNumber, what: "bounty paid (co-owner)" })),
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
