// CoDream dapp: reads the market directly from the chain (no backend of its own). Protocol facts
// (phase names, the INVALID score) come from the server's /config.json, never copied here.
//
// Every string that comes from the chain or IPFS (CIDs, reasons, addresses) reaches the page as a
// text node or an encoded URL component, never as HTML: see el() and gatewayUrl().
import { ethers } from "/vendor/ethers.min.js";

const $ = (id) => document.getElementById(id);
const short = (a) => a ? `${a.slice(0, 8)}…${a.slice(-4)}` : "–";

/** Wei as people read it, as the CLI does (codream.market.eth): "0.4486 ETH" (at most 4 decimals),
 *  "−0.01 ETH" for losses, below 0.0001 ETH in gwei ("12.5 gwei"), below a gwei in wei ("1 wei",
 *  never "1.0e-18 ETH"). */
function eth(wei, signed = false) {
  const v = BigInt(wei);
  if (v === 0n) return "0 ETH";
  const abs = v < 0n ? -v : v;
  const sign = v < 0n ? "−" : signed ? "+" : "";
  if (abs < 10n ** 9n) return `${sign}${abs} wei`;
  if (abs < 10n ** 14n) return `${sign}${(Number(abs) / 1e9).toFixed(4).replace(/\.?0+$/, "")} gwei`;
  return `${sign}${Number(ethers.formatEther(abs)).toFixed(4).replace(/\.?0+$/, "")} ETH`;
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
  // each cell carries its column's name: at phone width a row stacks into labelled lines (style.css)
  const heads = [...body.closest("table").querySelectorAll("thead th")].map((th) => th.textContent);
  for (const tr of body.rows) [...tr.cells].forEach((td, i) => { if (heads[i] && td.colSpan === 1) td.dataset.label = heads[i]; });
}

/** JSON from the dapp server (the core's read models); an error names what failed. */
async function api(path) {
  const res = await fetch(path, { cache: "no-store" });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || `${path}: HTTP ${res.status}`);
  return body;
}

// ------------------------------------------------------------------------------ charts (inline SVG)
const SVG = "http://www.w3.org/2000/svg";
/** An SVG element; text only through textContent (chain strings never become markup). */
function svgEl(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}
function chart(width, height, label) {
  return svgEl("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": label,
    "data-chart": label, preserveAspectRatio: "xMinYMin meet" });
}
const toEth = (wei) => Number(ethers.formatEther(BigInt(wei)));
const day = (t) => new Date(Number(t) * 1000).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

/** Net over time: a step line of the running net (earned − lost − spent), one dot per change. */
function drawEarnings(box, timeline) {
  if (!timeline.length) { box.replaceChildren(el("p", { class: "muted small" }, "no earnings or losses yet")); return; }
  const W = 600, H = 180, L = 56, R = 10, T = 12, B = 26;
  const ys = timeline.map((p) => toEth(p.cumulative_net_wei));
  const lo = Math.min(0, ...ys), hi = Math.max(0, ...ys), span = hi - lo || 1;
  const t0 = Number(timeline[0].time), t1 = Number(timeline[timeline.length - 1].time), tspan = t1 - t0 || 1;
  const x = (t) => L + (timeline.length === 1 ? (W - L - R) / 2 : (Number(t) - t0) / tspan * (W - L - R));
  const y = (v) => T + (hi - v) / span * (H - T - B);
  const svg = chart(W, H, "net over time");
  svg.append(svgEl("line", { x1: L, x2: W - R, y1: y(0), y2: y(0), class: "axis" }));
  svg.append(svgEl("text", { x: L - 4, y: y(hi) + 4, class: "tick", "text-anchor": "end" }, eth(BigInt(Math.round(hi * 1e9)) * 10n ** 9n)));
  if (lo < 0) svg.append(svgEl("text", { x: L - 4, y: y(lo) + 4, class: "tick", "text-anchor": "end" }, eth(BigInt(Math.round(lo * 1e9)) * 10n ** 9n)));
  svg.append(svgEl("text", { x: L - 4, y: y(0) + 4, class: "tick", "text-anchor": "end" }, "0"));
  svg.append(svgEl("text", { x: L, y: H - 6, class: "tick" }, day(t0)));
  if (t1 !== t0) svg.append(svgEl("text", { x: W - R, y: H - 6, class: "tick", "text-anchor": "end" }, day(t1)));
  let d = `M ${x(t0)} ${y(0)}`, prev = 0;
  timeline.forEach((p, i) => { d += ` L ${x(p.time)} ${y(prev)} L ${x(p.time)} ${y(ys[i])}`; prev = ys[i]; });
  svg.append(svgEl("path", { d, class: "line" }));
  timeline.forEach((p, i) => {
    const dot = svgEl("circle", { cx: x(p.time), cy: y(ys[i]), r: 4, class: BigInt(p.net_wei) < 0n ? "dot bad" : "dot ok" });
    dot.append(svgEl("title", {}, `task ${p.task}: ${eth(p.net_wei, true)} (net ${eth(p.cumulative_net_wei, true)})`));
    svg.append(dot);
  });
  box.replaceChildren(svg);
}

/** Each submission's seat scores on one bps axis: the min gain (a dashed line), the tolerance
 *  band around the result (shaded), each seat a dot (filled: agrees with the majority). */
function drawScores(box, sc) {
  const subs = sc.submissions;
  if (!subs.length) { box.replaceChildren(el("p", { class: "muted small" }, "no scores revealed yet")); return; }
  const special = (v) => v === cfg.protocol.invalid || v === cfg.protocol.noEval;
  const vals = subs.flatMap((s) => [s.result, ...s.seats.map((x) => x.score)]).filter((v) => v !== null && !special(v));
  const minGain = Number(sc.min_gain_bps), tol = Number(sc.tolerance_bps);
  let lo = Math.min(0, minGain, ...vals.map((v) => v - tol)), hi = Math.max(minGain, ...vals.map((v) => v + tol));
  const pad = (hi - lo) * 0.05 || 100; lo -= pad; hi += pad;
  const W = 600, L = 70, R = 12, rowH = 30, T = 18, H = T + subs.length * rowH + 22;
  const x = (v) => L + (v - lo) / (hi - lo) * (W - L - R);
  const svg = chart(W, H, "scores");
  svg.append(svgEl("line", { x1: x(minGain), x2: x(minGain), y1: T - 6, y2: H - 20, class: "mingain" }));
  svg.append(svgEl("text", { x: x(minGain), y: T - 8, class: "tick", "text-anchor": "middle" }, `min gain ${minGain} bps`));
  svg.append(svgEl("text", { x: L, y: H - 4, class: "tick" }, `${Math.round(lo)} bps`));
  svg.append(svgEl("text", { x: W - R, y: H - 4, class: "tick", "text-anchor": "end" }, `${Math.round(hi)} bps`));
  subs.forEach((s, i) => {
    const cy = T + i * rowH + rowH / 2;
    svg.append(svgEl("text", { x: 4, y: cy + 4, class: "tick" }, `#${s.index}`));
    svg.append(svgEl("line", { x1: L, x2: W - R, y1: cy, y2: cy, class: "axis" }));
    if (special(s.result)) {
      svg.append(svgEl("text", { x: L + 4, y: cy - 4, class: "tick bad" }, `${scoreText(s.result)} (${s.status})`));
    } else {
      svg.append(svgEl("rect", { x: x(s.result - tol), y: cy - 9, width: x(s.result + tol) - x(s.result - tol), height: 18,
        class: "band" }));
      svg.append(svgEl("line", { x1: x(s.result), x2: x(s.result), y1: cy - 9, y2: cy + 9, class: "median" }));
    }
    s.seats.forEach((seat, k) => {
      if (seat.score === null) return;
      const v = seat.score;
      const cx = special(v) ? L - 14 : x(v);
      const dot = svgEl("circle", { cx, cy: cy + (k % 2 ? 3 : -3), r: 4.5, class: seat.agrees ? "dot ok" : "dot open" });
      dot.append(svgEl("title", {}, `seat ${seat.seat}: ${scoreText(v)}${seat.agrees ? " (agrees)" : ""}`));
      svg.append(dot);
    });
  });
  box.replaceChildren(svg);
}

/** The tasks created over time (one bar per task, its bounty) and the stake per verifier. */
function drawNetwork(tasksBox, stakeBox, n) {
  if (!n.tasks.length) tasksBox.replaceChildren(el("p", { class: "muted small" }, "no tasks yet"));
  else {
    const W = 600, H = 150, L = 10, R = 10, T = 16, B = 24;
    const t0 = Number(n.tasks[0].time), t1 = Number(n.tasks[n.tasks.length - 1].time), span = t1 - t0 || 1;
    const maxB = Math.max(...n.tasks.map((t) => toEth(t.bounty_wei))) || 1;
    const x = (t) => L + 12 + (n.tasks.length === 1 ? (W - L - R - 24) / 2 : (Number(t) - t0) / span * (W - L - R - 24));
    const svg = chart(W, H, "tasks over time");
    svg.append(svgEl("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }));
    for (const t of n.tasks) {
      const h = toEth(t.bounty_wei) / maxB * (H - T - B);
      const bar = svgEl("rect", { x: x(t.time) - 6, y: H - B - h, width: 12, height: h, class: "bar" });
      bar.append(svgEl("title", {}, `task ${t.task}: bounty ${eth(t.bounty_wei)}, ${t.phase}`));
      svg.append(bar, svgEl("text", { x: x(t.time), y: H - B - h - 3, class: "tick", "text-anchor": "middle" }, `#${t.task}`));
    }
    svg.append(svgEl("text", { x: L, y: H - 6, class: "tick" }, day(t0)));
    if (t1 !== t0) svg.append(svgEl("text", { x: W - R, y: H - 6, class: "tick", "text-anchor": "end" }, day(t1)));
    tasksBox.replaceChildren(svg);
  }
  if (!n.stakes.length) { stakeBox.replaceChildren(el("p", { class: "muted small" }, "nobody staked yet")); return; }
  const total = BigInt(n.total_stake_wei);
  stakeBox.replaceChildren(...n.stakes.map((s) => {
    const w = BigInt(s.active_wei) + BigInt(s.pending_wei), pct = Number(w * 10000n / total) / 100;
    return el("div", { class: `stake-row${same(s.verifier, account) ? " mine" : ""}`, "data-verifier": s.verifier },
      el("span", { class: "mono", title: s.verifier }, short(s.verifier)),
      el("span", { class: "stake-bar" }, el("span", { style: `width:${pct}%` })),
      el("span", { class: "mono" }, `${eth(w)} · ${pct.toFixed(1)} %`));
  }));
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
      await renderNetwork();
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
      el("td", {}, cid ? el("button", { class: "thumb-btn", "data-cid": cid, title: "show the first 64 dreams",
        onclick: () => preview(cid) },
      el("img", { class: "thumb", loading: "lazy", alt: "dreams", src: `/preview/${encodeURIComponent(cid)}.png?thumb=1` }),
      el("span", {}, "preview")) : "")));
  }
  fillRows($("subs").querySelector("tbody"), rows, 8, "no submissions yet");
  renderHarvest(id, t, Number(phase), owners, miners, status, result, cids, settled);
  const sc = await api(`/api/task/${Number(id)}.json`);
  drawScores($("score-chart"), sc);
  const scored = sc.submissions.reduce((a, s) => a + s.scored, 0), agree = sc.submissions.reduce((a, s) => a + s.agree, 0);
  $("agreement").textContent = sc.submissions.length
    ? `committee agreement: ${agree} of ${scored} seat scores within ±${sc.tolerance_bps} bps of their submission's ` +
      `result; ${sc.submissions.filter((s) => s.majority).length} of ${sc.submissions.length} submission(s) with a majority`
    : "no scores revealed yet";
  $("agreement").dataset.agree = agree;
  $("agreement").dataset.scored = scored;
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
  $("task").dataset.shown = String(id);  // every part of the task view is drawn
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

/** The first screen: what the account earned, lost and spent per task, with the reasons (the
 *  core's accounting, codream.accounts.statement, served as /api/account/ADDRESS.json); withdrawals
 *  as transfers; claimable and stake read live from the chain. */
async function renderAccount() {
  const who = account;  // the account may change while the reads are in flight: draw only for the one asked
  const [st, claimable, info, pendingStake] = await Promise.all([
    api(`/api/account/${encodeURIComponent(who)}.json`), market.claimable(who), registry.info(who),
    registry.pendingOf(who)]);
  if (who !== account) { again = true; return; }  // stale: the refresh loop draws the new account next
  const put = (id, wei, signed = false) => { $(id).textContent = eth(wei, signed); $(id).dataset.wei = String(wei); };
  put("earned", st.earned_wei, true);
  put("lost", BigInt(st.lost_wei) ? -BigInt(st.lost_wei) : 0n, true);
  put("spent", BigInt(st.spent_wei) ? -BigInt(st.spent_wei) : 0n, true);
  $("spent-tile").classList.toggle("hidden", BigInt(st.spent_wei) === 0n);
  $("earned").className = `big mono ${BigInt(st.earned_wei) ? "ok" : ""}`;
  $("lost").className = `big mono ${BigInt(st.lost_wei) ? "bad" : ""}`;
  put("net-total", st.net_wei, true);
  $("net-total").className = `big mono ${BigInt(st.net_wei) < 0n ? "bad" : BigInt(st.net_wei) > 0n ? "ok" : ""}`;
  $("escrow-note").textContent = BigInt(st.in_escrow_wei) ? `+ ${eth(st.in_escrow_wei)} still in open tasks` : "settled tasks";
  put("claimable", claimable);
  put("stake", info.stake + pendingStake.amount);
  put("withdrawn", st.withdrawn_wei);
  put("pending", st.in_escrow_wei);
  $("locked").textContent = `${info.lockedSeats} seat(s) in open committees and appeals` +
    (pendingStake.amount > 0n ? ` · ${eth(pendingStake.amount)} warming up until ` +
      new Date(Number(pendingStake.activatesAt) * 1000).toLocaleString() : "") +
    (Number(info.unbondAt) ? ` · unbonding until ${new Date(Number(info.unbondAt) * 1000).toLocaleString()}` : "");
  drawEarnings($("earn-chart"), st.timeline);
  const sign = { returned: "", earned: "+", lost: "−", spent: "−" };
  fillRows($("money").querySelector("tbody"), st.tasks.map((t) => {
    const why = t.entries.filter((e) => e.kind !== "paid").map((e) => el("div", { class: `why ${e.kind}` },
      el("span", { class: "mono" }, `${sign[e.kind]}${eth(e.wei)}`), " ", e.reason));
    if (!why.length) why.push(el("div", { class: "why muted" }, `open (${t.phase}): ${eth(t.in_escrow_wei)} in escrow`));
    const net = BigInt(t.net_wei);
    return el("tr", { "data-task": t.task, class: "clickable", title: "show this task",
      onclick: () => { selectedTask = Number(t.task); refresh(); } },
    el("td", {}, t.task), el("td", {}, t.roles.join(", ")),
    el("td", { class: "mono", "data-wei": t.earned_wei }, eth(t.earned_wei)),
    el("td", { class: "mono", "data-wei": t.lost_wei }, eth(t.lost_wei)),
    el("td", { class: `mono ${net < 0n ? "bad" : net > 0n ? "ok" : ""}`, "data-wei": t.net_wei }, eth(net, true),
      BigInt(t.spent_wei) ? el("div", { class: "muted small" }, `spent ${eth(t.spent_wei)}`) : null),
    el("td", {}, ...why));
  }), 6, "nothing yet: no task, bond, seat or appeal of this address");
  fillRows($("withdrawals").querySelector("tbody"), st.withdrawals.map((w) => el("tr", { "data-wei": w.wei },
    el("td", {}, w.block), el("td", {}, day(w.time)), el("td", { class: "mono" }, `${eth(w.wei)} → wallet`))),
  3, "no withdrawal yet");
  $("claim-btn").disabled = !signer || claimable === 0n;
  $("account").dataset.shown = who;  // every number above is this account's
}

/** The network at a glance (codream.accounts.network, /api/network.json). */
async function renderNetwork() {
  const n = await api("/api/network.json");
  $("net-tasks").textContent = n.task_count;
  $("net-stake").textContent = eth(n.total_stake_wei);
  $("net-stake").dataset.wei = n.total_stake_wei;
  const paid = BigInt(n.miners_paid_wei) + BigInt(n.verifiers_paid_wei);
  $("net-paid").textContent = eth(paid);
  $("net-paid").dataset.wei = paid.toString();
  $("net-paid-note").textContent = `miners ${eth(n.miners_paid_wei)} · verifiers ${eth(n.verifiers_paid_wei)} ` +
    `(fee + forfeited bonds) · bounties ${eth(n.bounty_wei)}`;
  $("net-burned").textContent = eth(n.burned_wei);
  drawNetwork($("tasks-chart"), $("stake-chart"), n);
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

window.codreamFormat = { eth, duration };  // for the browser test: the page's own formatting
boot();
