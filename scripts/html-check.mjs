// Opens HTML reports in headless Chromium (Debian's /usr/bin/chromium via
// playwright-core), fails on any console error, page error or network
// request, checks that every plot is laid out with a non-zero size, and
// writes screenshots next to each report: the full page (NAME.png), the top
// down to the end of the first scenario (NAME-top.png), each scenario
// section (NAME-s<i>.png) and each figure (NAME-f<i>.png).
// Usage: node scripts/html-check.mjs REPORT.html...   (run by scripts/html-check.sh)
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const require = createRequire(process.env.PLAYWRIGHT_MODULES + '/');
const { chromium } = require('playwright-core');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  chromiumSandbox: false,
  args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let failures = 0;
try {
  for (const file of process.argv.slice(2)) {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const problems = [];
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('request', (r) => { if (!r.url().startsWith('file:')) problems.push(`network request: ${r.url()}`); });
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
    const url = pathToFileURL(path.resolve(file)).href;
    const resp = await page.goto(url, { waitUntil: 'load' });
    if (!resp || !resp.ok()) problems.push(`load failed: ${resp && resp.status()}`);
    const plots = await page.$$eval('svg.plot', (els) => els.map((e) => {
      const r = e.getBoundingClientRect();
      return { label: e.getAttribute('aria-label'), w: r.width, h: r.height, texts: e.querySelectorAll('text').length };
    }));
    const empty = plots.filter((p) => !(p.w > 100 && p.h > 100 && p.texts > 0));
    for (const p of empty) problems.push(`plot not laid out: ${JSON.stringify(p)}`);
    if (plots.length === 0) problems.push('no plots on the page');
    // Embedded flame graphs (a scenario's profile) must decode and show.
    const flames = await page.$$eval('img.flame', (els) => els.map((e) => {
      const r = e.getBoundingClientRect();
      return { natural: e.naturalWidth, w: r.width, h: r.height };
    }));
    for (const f of flames) {
      if (!(f.natural > 0 && f.w > 100 && f.h > 50)) problems.push(`flame graph not shown: ${JSON.stringify(f)}`);
    }
    const title = await page.title();
    const base = file.replace(/\.html$/, '');
    await page.screenshot({ path: `${base}.png`, fullPage: true });
    const sections = await page.$$('section.scenario');
    for (let i = 0; i < sections.length; i++) {
      await sections[i].screenshot({ path: `${base}-s${i}.png` });
    }
    const figures = await page.$$('figure');
    for (let i = 0; i < figures.length; i++) {
      await figures[i].screenshot({ path: `${base}-f${i}.png` });
    }
    // The top of the page down to the end of the first scenario.
    const bottom = await page.evaluate(() => {
      const s = document.querySelector('section.scenario');
      return s ? s.getBoundingClientRect().bottom + window.scrollY : 0;
    });
    if (bottom > 0) {
      await page.screenshot({ path: `${base}-top.png`, fullPage: true,
        clip: { x: 0, y: 0, width: 1100, height: Math.ceil(bottom + 8) } });
    }
    const kinds = {};
    for (const p of plots) kinds[p.label] = (kinds[p.label] || 0) + 1;
    console.log(`${file}: "${title}", ${plots.length} plots, ${flames.length} flame graph(s), ${problems.length} problems`);
    for (const [k, n] of Object.entries(kinds)) console.log(`  ${n} × ${k}`);
    console.log(`  screenshots: ${base}.png, ${base}-top.png, ${sections.length} section(s) ${base}-s<i>.png, ${figures.length} figure(s) ${base}-f<i>.png`);
    for (const p of problems) console.log(`  PROBLEM ${p}`);
    failures += problems.length;
    await page.close();
  }
} finally {
  await browser.close();
}
process.exit(failures ? 1 : 0);
