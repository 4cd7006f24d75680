// Drives the dapp in real headless Chromium (Debian chromium + playwright-core).
// usage: node check.mjs URL EXPECTED_JSON SCREENSHOT CLAIM_DEV_INDEX OWNER_ADDRESS
// Also keeps one screenshot per view beside SCREENSHOT: -tasks, -account, -task, -preview, -harvest,
// and the whole page at desktop (-desktop) and phone width (-phone, 420 px).
// EXPECTED_JSON: {"0xaddr": {"claimable": wei, ...}, ...}; prints a JSON report on stdout: what the
// page shows for each address (the wei behind every number), and whether anything overflows at 420 px.
import { chromium } from "playwright-core";

const [url, expectedPath, shot, claimIdx, owner, expectedMiner] = process.argv.slice(2);
const expected = JSON.parse(await (await import("node:fs/promises")).readFile(expectedPath, "utf8"));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const report = { shown: {}, errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1400 } });
  page.on("pageerror", (e) => report.errors.push(String(e)));
  await page.goto(url);
  await page.waitForSelector("#tasks tbody tr[data-task]", { timeout: 30000 });
  const view = (name) => shot.replace(/\.png$/, `-${name}.png`);
  await page.locator("#tasks").screenshot({ path: view("tasks") });
  report.banner = await page.locator("#banner").isVisible() ? await page.textContent("#banner") : null;
  for (const addr of Object.keys(expected)) {
    await page.selectOption("#mode", "read");
    await page.fill("#address", addr);
    await page.click("#connect-btn");
    await page.waitForFunction((a) => document.getElementById("acct-addr").textContent.toLowerCase() === a.toLowerCase()
      && document.getElementById("claimable").dataset.wei !== undefined, addr, { timeout: 20000 });
    await page.waitForTimeout(300);
    await page.waitForFunction((a) => (document.getElementById("account").dataset.shown || "").toLowerCase()
      === a.toLowerCase(), addr, { timeout: 20000 });
    report.shown[addr] = await page.getAttribute("#claimable", "data-wei");
    report.money = report.money || {};
    report.money[addr] = await page.evaluate(() => ({
      earned: document.getElementById("earned").dataset.wei, lost: document.getElementById("lost").dataset.wei,
      net: document.getElementById("net-total").dataset.wei,
      netText: document.getElementById("net-total").textContent,
      tasks: Object.fromEntries([...document.querySelectorAll("#money tbody tr[data-task]")].map((tr) => [tr.dataset.task,
        { earned: tr.cells[2].dataset.wei, lost: tr.cells[3].dataset.wei, net: tr.cells[4].dataset.wei,
          why: tr.cells[5].innerText }])),
      chartDots: document.querySelectorAll("#earn-chart svg circle").length,
    }));
  }
  report.formats = await page.evaluate(() => ["1", "-1", "999999999", "1000000000", "12500000000", "-10000000000000000",
    "459500000000000000", "1000000000000000000"].map((w) => window.codreamFormat.eth(w)));
  // act as a dev account and claim
  await page.selectOption("#mode", "dev");
  await page.selectOption("#dev-account", claimIdx);
  await page.click("#connect-btn");
  await page.waitForFunction(() => !document.getElementById("claim-btn").disabled, null, { timeout: 20000 });
  report.beforeClaim = await page.getAttribute("#claimable", "data-wei");
  await page.click("#claim-btn");
  await page.waitForFunction(() => document.getElementById("claimable").dataset.wei === "0", null, { timeout: 30000 });
  report.afterClaim = await page.getAttribute("#claimable", "data-wei");
  await page.waitForFunction(() => document.getElementById("withdrawn").dataset.wei !== "0", null, { timeout: 20000 });
  report.withdrawn = await page.getAttribute("#withdrawn", "data-wei");
  report.claimMsg = await page.textContent("#claim-msg");
  report.withdrawals = await page.$$eval("#withdrawals tbody tr[data-wei]", (trs) => trs.map((tr) => tr.dataset.wei));
  report.moneyRows = await page.$$eval("#money tbody tr", (trs) => trs.map((tr) => tr.innerText));
  report.claimableText = await page.textContent("#claimable");
  await page.locator("#account").screenshot({ path: view("account") });
  // open the task, preview the first bundle
  await page.click("#tasks tbody tr[data-task]");
  await page.waitForSelector("#subs button[data-cid]", { timeout: 20000 });
  await page.waitForFunction(() => document.getElementById("task").dataset.shown === "1", null, { timeout: 20000 });
  report.rows = await page.$$eval("#subs tbody tr", (trs) => trs.map((tr) => tr.innerText));
  report.mineRows = await page.$$eval("#subs tbody tr.mine", (trs) => trs.length);
  report.seats = await page.$$eval("#seats tbody tr", (trs) => trs.map((tr) => tr.innerText));
  report.params = await page.textContent("#task-params");
  await page.waitForSelector("#score-chart svg[data-chart]", { timeout: 20000 });
  report.scores = await page.evaluate(() => ({
    dots: document.querySelectorAll("#score-chart svg circle").length,
    bands: document.querySelectorAll("#score-chart svg rect.band").length,
    minGain: document.querySelectorAll("#score-chart svg line.mingain").length,
    agree: document.getElementById("agreement").dataset.agree, scored: document.getElementById("agreement").dataset.scored,
    text: document.getElementById("agreement").textContent }));
  await page.waitForFunction(() => [...document.querySelectorAll("#subs img.thumb")].some((i) => i.complete && i.naturalWidth > 0),
    null, { timeout: 30000 });
  report.thumbs = await page.$$eval("#subs img.thumb", (is) => is.map((i) => [i.naturalWidth, i.naturalHeight]));
  report.network = await page.evaluate(() => ({
    tasks: document.getElementById("net-tasks").textContent, stake: document.getElementById("net-stake").dataset.wei,
    paid: document.getElementById("net-paid").dataset.wei, stakeRows: document.querySelectorAll("#stake-chart .stake-row").length,
    taskBars: document.querySelectorAll("#tasks-chart svg rect.bar").length }));
  await page.locator("#task").screenshot({ path: view("task") });
  await page.click("#subs button[data-cid]");
  await page.waitForSelector("#preview-wrap:not(.hidden)", { timeout: 20000 });
  report.preview = await page.textContent("#preview-title");
  report.previewSize = await page.$eval("#preview", (img) => [img.naturalWidth, img.naturalHeight]);
  await page.locator("#preview-wrap").screenshot({ path: view("preview") });
  // the harvest summary: hidden for the miner, shown to the task's owner
  report.harvest = { hiddenForMiner: await page.locator("#harvest").isHidden() };
  await page.selectOption("#mode", "read");
  await page.fill("#address", owner);
  await page.click("#connect-btn");
  await page.waitForSelector("#harvest:not(.hidden)", { timeout: 20000 });
  report.harvest.command = await page.textContent("#harvest-cmd");
  report.harvest.summary = await page.textContent("#harvest-summary");
  report.harvest.rows = await page.$$eval("#harvest-bundles tbody tr[data-index]", (trs) => trs.length);
  await page.locator("#harvest").screenshot({ path: view("harvest") });
  await page.screenshot({ path: shot, fullPage: true });
  // the miner's first screen with its task open, at desktop and at phone width: nothing wider than the screen
  await page.selectOption("#mode", "read");
  await page.fill("#address", expectedMiner);
  await page.click("#connect-btn");
  await page.waitForFunction((a) => (document.getElementById("account").dataset.shown || "").toLowerCase()
    === a.toLowerCase(), expectedMiner, { timeout: 20000 });
  await page.waitForTimeout(1500);
  await page.screenshot({ path: view("desktop"), fullPage: true });
  report.overflow = {};
  report.overflow.desktop = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.setViewportSize({ width: 420, height: 900 });
  await page.waitForTimeout(800);
  report.overflow.phone = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  report.overflow.wide = await page.evaluate(() => [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && e.offsetParent !== null)
    .slice(0, 5).map((e) => `${e.tagName}#${e.id}.${e.className}`));
  await page.screenshot({ path: view("phone"), fullPage: true });
} catch (e) {
  report.errors.push(String(e));
  try {  // what the page says about it, if anything
    const pages = browser.contexts().flatMap((c) => c.pages());
    if (pages.length) report.errors.push(`banner: ${await pages[0].textContent("#banner")}`);
  } catch (_) { /* the page is gone */ }
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
