// Loads the dapp after hostile strings reached the chain (a task's spec CID, a miner's revealed
// CID): they must render as text, never run. usage: node hostile.mjs URL HOSTILE_SUBSTRING
// Prints a JSON report: what the page shows, whether any injected script or element ran.
import { chromium } from "playwright-core";

const [url, hostile] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const report = { errors: [], dialogs: [] };
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => report.errors.push(String(e)));
  page.on("dialog", async (d) => { report.dialogs.push(d.message()); await d.dismiss(); });
  await page.goto(url);
  await page.waitForSelector("#tasks tbody tr[data-task]", { timeout: 30000 });
  await page.click("#tasks tbody tr[data-task]");
  await page.waitForSelector("#subs tbody tr td.mono a", { timeout: 20000 });
  await page.waitForTimeout(500);
  report.taskLinks = await page.$$eval("#tasks a", (as) => as.map((a) => ({ text: a.textContent, title: a.title, href: a.href })));
  report.subLinks = await page.$$eval("#subs a", (as) => as.map((a) => ({ text: a.textContent, title: a.title, href: a.href })));
  // the page draws its own charts (svg[data-chart]); any other svg, img[src=x] or inline script is injected
  report.injectedElements = await page.$$eval("img[src='x'], script:not([src]), svg:not([data-chart])", (es) => es.length);
  report.thumbSrcs = await page.$$eval("img.thumb", (is) => is.map((i) => i.getAttribute("src")));
  report.pwned = await page.evaluate(() => window.__pwned === true);
  report.hostileInTitles = [...report.taskLinks, ...report.subLinks].some((l) => l.title.includes(hostile));
} catch (e) {
  report.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
