// CoDream dapp: reads the market directly from the chain (no backend of its own).
import { ethers } from "/vendor/ethers.min.js";

const PHASES = ["none", "commit", "reveal", "eval reveal", "awaiting draw", "score commit", "score reveal",
  "awaiting finalize", "finalized"];
const INVALID = -(2 ** 31);
const $ = (id) => document.getElementById(id);
const eth = (wei) => ethers.formatEther(wei);
const short = (a) => a ? `${a.slice(0, 8)}…${a.slice(-4)}` : "–";

let cfg, provider, market, signer = null, account = null, selectedTask = null, busy = false, again = false;

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
  $("market").textContent = cfg.market;
  for (const [i, d] of (cfg.devAccounts || []).entries()) {
    const o = document.createElement("option");
    o.value = i; o.textContent = `${d.label} ${d.address}`;
    $("dev-account").appendChild(o);
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

async function renderTasks() {
  const [count, block, created] = await Promise.all([market.taskCount(), provider.getBlock("latest"),
    logs("TaskCreated")]);
  const n = Number(count), now = block.timestamp;
  const offered = {};
  for (const e of created) offered[Number(e.args.taskId)] = e.args.bounty;
  const body = $("tasks").querySelector("tbody");
  const rows = [];
  for (let id = n; id >= 1; id--) {
    const [t, ph] = await Promise.all([market.getTask(id), market.phaseOf(id)]);
    const ends = { 1: t.commitEnd, 2: t.revealEnd, 3: t.evalRevealEnd, 5: t.scoreCommitEnd, 6: t.scoreRevealEnd };
    const left = ends[ph] !== undefined ? Math.max(0, Number(ends[ph]) - now) : null;
    rows.push(`<tr class="clickable" data-task="${id}"><td>${id}</td><td>${PHASES[ph]}</td>` +
      `<td>${left === null ? "–" : left + " s"}</td><td>${eth(offered[id] ?? t.bounty)}</td><td>${t.submissionCount}</td>` +
      `<td class="mono"><a href="${cfg.gateway}${t.specCid}" target="_blank">${short(t.specCid)}</a></td></tr>`);
  }
  body.innerHTML = rows.join("") || `<tr><td colspan="6" class="muted">no tasks yet</td></tr>`;
  for (const tr of body.querySelectorAll("tr[data-task]")) tr.onclick = () => { selectedTask = Number(tr.dataset.task); renderTask(selectedTask); };
}

async function renderTask(id) {
  $("task").classList.remove("hidden");
  $("task-id").textContent = id;
  const [[miners, revealed], medians, revealedEv, settledEv] = await Promise.all([
    market.getSubmissions(id), market.getMedians(id), logs("Revealed", id), logs("SubmissionSettled", id)]);
  const cids = {}, settled = {};
  for (const e of revealedEv) cids[Number(e.args.index)] = e.args.cid;
  for (const e of settledEv) settled[Number(e.args.index)] = e.args;
  const rows = [];
  for (let i = 0; i < miners.length; i++) {
    const med = i < medians.length && revealed[i] ? Number(medians[i]) : null;
    const s = settled[i];
    let verdict = revealed[i] ? "revealed" : "not revealed";
    if (med === INVALID) verdict = '<span class="bad">INVALID</span>';
    else if (s) verdict = s.accepted ? '<span class="ok">accepted</span>' : "below min gain";
    const cid = cids[i];
    rows.push(`<tr><td>${i}</td><td class="mono">${short(miners[i] === ethers.ZeroAddress ? null : miners[i])}</td>` +
      `<td class="mono">${cid ? `<a href="${cfg.gateway}${cid}" target="_blank">${short(cid)}</a>` : "–"}</td>` +
      `<td>${med === null ? "–" : med === INVALID ? "INVALID" : med}</td><td>${verdict}</td>` +
      `<td>${s ? eth(s.reward) : "–"}</td><td>${cid ? `<button data-cid="${cid}">preview</button>` : ""}</td></tr>`);
  }
  const body = $("subs").querySelector("tbody");
  body.innerHTML = rows.join("") || `<tr><td colspan="7" class="muted">no submissions yet</td></tr>`;
  for (const b of body.querySelectorAll("button[data-cid]")) b.onclick = () => preview(b.dataset.cid);
}

async function preview(cid) {
  // a bundle is safetensors: u64 header length, JSON header, uint8 images [N, C, H, W]
  try {
    const buf = new Uint8Array(await (await fetch(cfg.gateway + cid)).arrayBuffer());
    const n = Number(new DataView(buf.buffer).getBigUint64(0, true));
    if (n > 65536 || 8 + n > buf.length) throw new Error("not a bundle");
    const header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + n)));
    const [N, C, H, W] = header.images.shape;
    const data = buf.subarray(8 + n);
    const cols = 16, shown = Math.min(N, 64), scale = Math.max(1, Math.floor(48 / Math.max(H, W)));
    const cv = $("preview");
    cv.width = cols * W * scale; cv.height = Math.ceil(shown / cols) * H * scale;
    const ctx = cv.getContext("2d");
    const img = ctx.createImageData(cv.width, cv.height);
    for (let k = 0; k < shown; k++) {
      const ox = (k % cols) * W * scale, oy = Math.floor(k / cols) * H * scale;
      for (let y = 0; y < H * scale; y++) for (let x = 0; x < W * scale; x++) {
        const px = Math.floor(x / scale), py = Math.floor(y / scale), base = k * C * H * W;
        const o = ((oy + y) * cv.width + ox + x) * 4;
        for (let c = 0; c < 3; c++) img.data[o + c] = data[base + (C === 1 ? 0 : c) * H * W + py * W + px];
        img.data[o + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
    $("preview-title").textContent = `${shown} of ${N} dreams in ${short(cid)}`;
    $("preview-wrap").classList.remove("hidden");
  } catch (e) {
    banner(`Preview of ${cid} failed: ${e.message} (is the IPFS gateway at ${cfg.gateway} up?)`);
  }
}

async function renderAccount() {
  const [claimable, v, credited, slashed, withdrawn, committed] = await Promise.all([
    market.claimable(account), market.verifiers(account), logs("Credited", account), logs("Slashed", account),
    logs("Withdrawn", account), logs("Committed", null, account)]);
  $("claimable").textContent = eth(claimable);
  $("claimable").dataset.wei = claimable.toString();
  $("stake").textContent = eth(v[0]);
  let pending = 0n;
  for (const e of committed) {
    if (Number(await market.phaseOf(e.args.taskId)) !== 8) pending += (await market.getTask(e.args.taskId)).minerBond;
  }
  $("pending").textContent = eth(pending);
  const out = withdrawn.reduce((a, e) => a + e.args.amount, 0n);
  $("withdrawn").textContent = eth(out);
  $("withdrawn").dataset.wei = out.toString();
  const hist = [
    ...credited.map((e) => ({ task: e.args.taskId, amount: eth(e.args.amount), what: e.args.reason, block: e.blockNumber })),
    ...slashed.map((e) => ({ task: e.args.taskId, amount: "-" + eth(e.args.amount), what: "slashed: " + e.args.reason, block: e.blockNumber })),
    ...withdrawn.map((e) => ({ task: "–", amount: eth(e.args.amount), what: "withdrawn", block: e.blockNumber })),
  ].sort((a, b) => a.block - b.block);
  $("history").querySelector("tbody").innerHTML = hist.map((h) =>
    `<tr><td>${h.task}</td><td>${h.amount}</td><td>${h.what}</td><td>${h.block}</td></tr>`).join("") ||
    `<tr><td colspan="4" class="muted">nothing yet</td></tr>`;
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
