// Screenshots of Burner pages at desktop and phone widths, for looking at what people see.
// Usage: node tools/screenshot.mjs <base-url> <out-dir> [path ...]
import { chromium } from '@playwright/test';
import { mkdirSync } from 'node:fs';

const [base = 'http://127.0.0.1:3000', out = '/tmp/burner-shots', ...paths] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const sizes = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
for (const path of paths.length ? paths : ['/']) {
  for (const [label, viewport] of Object.entries(sizes)) {
    for (const scheme of ['light', 'dark']) {
      const page = await browser.newPage({ viewport, colorScheme: scheme });
      await page.goto(base + path, { waitUntil: 'networkidle' });
      const name = `${path.replace(/[^a-z0-9]+/gi, '_') || 'root'}-${label}-${scheme}.png`;
      await page.screenshot({ path: `${out}/${name}`, fullPage: true });
      await page.close();
      console.log(`${out}/${name}`);
    }
  }
}
await browser.close();
