// Time to interactive, as a person opening Burner meets it, from navigation: on `/`, until the
// page is hydrated with its socket open and the server's first frame in (the app opens its
// socket only once hydrated, so that frame proves both); on a room page, which opens its socket
// only when the visitor joins, until it is hydrated (the one pass after hydration has written
// the messages' times). Headless Chromium, on this machine, cold cache (a new browser context
// per visit), median and p90 of 20 visits per page. Beside them, the floor: a minimal page whose
// one inline script opens a socket to the same server.
//
// Usage: node --experimental-websocket tools/tti.mjs [--write ../docs/BENCHMARKS.md]
import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { freePort, seedLobby, startServer } from './server.mjs';

const VISITS = 20;
const writeTo = process.argv.includes('--write') ? process.argv[process.argv.indexOf('--write') + 1] : null;

// Runs in the page before its own scripts: notes when the first frame of the first socket
// arrives (`socket`), and when the first message time is written in (`hydrated`).
const probe = () => {
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', () => {
        window.__socket ??= performance.now();
      });
    }
  };
  new MutationObserver((_, observer) => {
    if ([...document.querySelectorAll('time')].some((t) => t.textContent !== '')) {
      window.__hydrated ??= performance.now();
      observer.disconnect();
    }
  }).observe(document, { subtree: true, childList: true, characterData: true });
};

/** The minimal page: one inline script, one socket to Burner, nothing else. */
async function startFloor(burnerPort) {
  const port = await freePort();
  const html = `<!doctype html><meta charset="utf-8"><title>floor</title><p>minimal page</p>
<script>new WebSocket('ws://127.0.0.1:${burnerPort}/ws?v=1')</script>`;
  const server = createServer((_, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(html);
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${port}/` };
}

async function measure(browser, url, marker) {
  const times = [];
  for (let visit = 0; visit < VISITS; visit++) {
    const context = await browser.newContext();
    await context.addInitScript(probe);
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction((marker) => window[marker] !== undefined, marker, { timeout: 10_000 });
    times.push(await page.evaluate((marker) => window[marker], marker));
    await context.close();
  }
  times.sort((a, b) => a - b);
  const at = (q) => times[Math.min(times.length - 1, Math.floor(times.length * q))];
  return { median: at(0.5), p90: at(0.9) };
}

const port = await freePort();
const dataDir = mkdtempSync(path.join(tmpdir(), 'burner-tti-'));
const floor = await startFloor(port);
const server = await startServer(port, dataDir, {
  BURNER_ALLOWED_ORIGINS: `http://127.0.0.1:${port},${new URL(floor.url).origin}`,
});
let browser;
try {
  await seedLobby(port);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const rows = [];
  for (const [name, url, marker] of [
    ['`/` (directory): hydrated, socket open, first frame in', `http://127.0.0.1:${port}/`, '__socket'],
    ['`/r/lobby` (50 messages): hydrated', `http://127.0.0.1:${port}/r/lobby`, '__hydrated'],
    ['minimal page: one inline script, socket open, first frame in (the floor)', floor.url, '__socket'],
  ]) {
    const { median, p90 } = await measure(browser, url, marker);
    console.log(`${name}: median ${median.toFixed(0)} ms, p90 ${p90.toFixed(0)} ms`);
    rows.push(`| ${name} | ${median.toFixed(0)} ms | ${p90.toFixed(0)} ms |`);
  }
  const table = [
    `Run ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, headless Chromium, cold cache, ${VISITS} visits per page, by \`scripts/tti.sh\`.`,
    '',
    '| page | median | p90 |',
    '|---|---:|---:|',
    ...rows,
  ].join('\n');
  console.log(`\n${table}`);
  if (writeTo) {
    const [start, end] = ['<!-- tti: start -->', '<!-- tti: end -->'];
    const text = readFileSync(writeTo, 'utf8');
    if (text.includes(start) && text.includes(end)) {
      writeFileSync(writeTo, text.slice(0, text.indexOf(start) + start.length) + '\n' + table + '\n' + text.slice(text.indexOf(end)));
      console.log(`written to ${writeTo}`);
    }
  }
} finally {
  await browser?.close();
  server.kill();
  floor.server.close();
  rmSync(dataDir, { recursive: true, force: true });
}
