// Loads the dapp in real headless Chromium and waits for error banners, in order.
// usage: node banners.mjs URL TIMEOUT_MS SUBSTRING [SUBSTRING ...]
// Prints one JSON line per banner seen ({"banner": text}) as soon as it shows, so the
// caller can change the world (start a node) between them; then a final report line.
import { chromium } from "playwright-core";

const [url, timeout, ...wanted] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const report = { seen: [], errors: [] };
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => report.errors.push(String(e)));
  await page.goto(url);
  for (const w of wanted) {
    await page.waitForFunction((s) => {
      const b = document.getElementById("banner");
      return !b.classList.contains("hidden") && b.textContent.includes(s);
    }, w, { timeout: Number(timeout) });
    const text = await page.textContent("#banner");
    report.seen.push(text);
    console.log(JSON.stringify({ banner: text }));
  }
  report.tasksShown = await page.locator("#tasks tbody tr[data-task]").count();
} catch (e) {
  report.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
