// Drives the dapp in real headless Chromium (Debian chromium + playwright-core).
// usage: node check.mjs URL EXPECTED_JSON SCREENSHOT CLAIM_DEV_INDEX OWNER_ADDRESS
// Also keeps one screenshot per view beside SCREENSHOT: -tasks, -account, -task, -preview.
// EXPECTED_JSON: {"0xaddr": "claimable wei", ...}; prints a JSON report on stdout.
import { chromium } from "playwright-core";

const [url, expectedPath, shot, claimIdx, owner] = process.argv.slice(2);
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
    report.shown[addr] = await page.getAttribute("#claimable", "data-wei");
  }
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
  report.history = await page.$$eval("#history tbody tr", (trs) => trs.map((tr) => tr.innerText));
  report.claimableText = await page.textContent("#claimable");
  await page.locator("#account").screenshot({ path: view("account") });
  // open the task, preview the first bundle
  await page.click("#tasks tbody tr[data-task]");
  await page.waitForSelector("#subs button[data-cid]", { timeout: 20000 });
  report.rows = await page.$$eval("#subs tbody tr", (trs) => trs.map((tr) => tr.innerText));
  report.mineRows = await page.$$eval("#subs tbody tr.mine", (trs) => trs.length);
  report.seats = await page.$$eval("#seats tbody tr", (trs) => trs.map((tr) => tr.innerText));
  report.params = await page.textContent("#task-params");
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
