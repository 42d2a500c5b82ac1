// Lighthouse (mobile preset, Debian's Chromium) as an outside grader of Burner's pages:
// starts its own release server with a lobby of 50 messages, grades `/`, `/r/lobby` and `/mod`
// (the median of five runs each), prints the scores and fails below the bar (Accessibility 100; Performance, Best Practices
// and SEO 95). With `--write FILE` the table also goes between the markers in FILE.
//
// Usage: node --experimental-websocket tools/lighthouse.mjs [--write ../docs/BENCHMARKS.md]
import lighthouse from 'lighthouse';
import * as chromeLauncher from 'chrome-launcher';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import * as path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);
const binary = process.env.BURNER_BIN ?? path.resolve(homedir(), '.cache/burner/target/release/burner');
const siteDir = process.env.BURNER_SITE_DIR ?? path.resolve(here, '../../target/site');
const RUNS = 5;
const BAR = { performance: 95, accessibility: 100, 'best-practices': 95, seo: 95 };
const PAGES = ['/', '/r/lobby', '/mod'];
const writeTo = process.argv.includes('--write') ? process.argv[process.argv.indexOf('--write') + 1] : null;

async function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function startServer(port, dataDir) {
  const child = spawn(binary, ['--site-dir', siteDir], {
    env: {
      ...process.env,
      BURNER_ADDR: `127.0.0.1:${port}`,
      BURNER_LOG: 'warn',
      BURNER_DATA_DIR: dataDir,
      BURNER_MOD_TOKEN: 'lighthouse-token',
      BURNER_MESSAGE_BURST: '100',
      BURNER_MESSAGE_BURST_PER_IP: '1000',
      BURNER_JOIN_BURST_PER_IP: '100',
      BURNER_CONNECT_BURST_PER_IP: '100',
      BURNER_MAX_CONNECTIONS_PER_IP: '100',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return child;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error('Burner did not start');
}

/** Opens a socket, joins the lobby as `nickname`; resolves with a `say(text)` that waits for the receipt. */
async function member(port, nickname, i) {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/ws?v=1`, { headers: { origin: `http://127.0.0.1:${port}` } });
  let waiting = null;
  await new Promise((resolve, reject) => {
    socket.onerror = reject;
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === 'welcome') {
        socket.send(JSON.stringify({ type: 'join', room: 'lobby', nickname, session: `lighthouse-seed-${i}-0123456789` }));
      } else if (message.type === 'joined') {
        resolve();
      } else if (message.type === 'message_accepted') {
        waiting?.resolve();
      } else if (message.type === 'error') {
        (waiting ?? { reject }).reject(new Error(`${nickname}: ${message.message}`));
      }
    };
  });
  return {
    say: (text) =>
      new Promise((resolve, reject) => {
        waiting = { resolve, reject };
        socket.send(JSON.stringify({ type: 'send_message', text }));
      }),
    close: () => socket.close(),
  };
}

/** Five people talk in the lobby, two or three messages each in turn, then leave: 50 messages
 * (about twenty headers, as a lively room has) for the page to show. */
async function seedLobby(port) {
  const lines = [
    'Morning! Anyone up?',
    'Just got here, what did I miss',
    'The new release is out: https://example.com/notes',
    'Has anyone tried the one-way rooms yet?',
    'It is strange not to see your own words, but freeing',
    'ha, yes',
    'I keep writing things and forgetting them',
  ];
  const names = ['ada', 'grace', 'linus', 'margaret', 'dennis'];
  const people = [];
  for (const [i, nickname] of names.entries()) people.push(await member(port, nickname, i));
  for (let n = 0, turn = 0; n < 50; turn++) {
    const run = 2 + (turn % 2);
    for (let k = 0; k < run && n < 50; k++, n++) await people[turn % people.length].say(`${lines[n % lines.length]} (${n + 1})`);
  }
  for (const person of people) person.close();
}

function table(rows) {
  const head = '| page | Performance | Accessibility | Best Practices | SEO |\n|---|---:|---:|---:|---:|';
  return [head, ...rows.map((r) => `| \`${r.page}\` | ${r.performance} | ${r.accessibility} | ${r['best-practices']} | ${r.seo} |`)].join('\n');
}

const port = await freePort();
const dataDir = mkdtempSync(path.join(tmpdir(), 'burner-lighthouse-'));
const server = await startServer(port, dataDir);
let chrome;
let failed = [];
try {
  await seedLobby(port);
  chrome = await chromeLauncher.launch({
    chromePath: process.env.CHROME_PATH ?? '/usr/bin/chromium',
    chromeFlags: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const rows = [];
  // Scores vary from run to run (Lighthouse's own advice: take the median of several).
  for (const page of PAGES) {
    const runs = [];
    for (let run = 0; run < RUNS; run++) {
      const result = await lighthouse(`http://127.0.0.1:${port}${page}`, {
        port: chrome.port,
        output: 'json',
        logLevel: 'error',
        onlyCategories: Object.keys(BAR),
      });
      runs.push(result.lhr);
    }
    const row = { page };
    for (const id of Object.keys(BAR)) {
      const ordered = [...runs].sort((a, b) => a.categories[id].score - b.categories[id].score);
      const median = ordered[Math.floor(RUNS / 2)];
      const category = median.categories[id];
      row[id] = Math.round(category.score * 100);
      if (row[id] < BAR[id]) {
        const audits = category.auditRefs
          .map((ref) => median.audits[ref.id])
          .filter((a) => a.score !== null && a.score < 1 && a.scoreDisplayMode !== 'informative')
          .map((a) => `${a.id} (${a.displayValue ?? a.score})`);
        failed.push(`${page}: ${category.title} ${row[id]} < ${BAR[id]}: ${audits.join(', ')}`);
      }
    }
    rows.push(row);
  }
  const text = table(rows);
  console.log(text);
  if (writeTo) {
    const doc = readFileSync(writeTo, 'utf8');
    const start = '<!-- lighthouse: start -->';
    const end = '<!-- lighthouse: end -->';
    const at = doc.indexOf(start);
    const stop = doc.indexOf(end);
    if (at < 0 || stop < 0) throw new Error(`no ${start} … ${end} markers in ${writeTo}`);
    const dated = `Lighthouse 12.2.3, mobile preset, median of ${RUNS} runs, ${new Date().toISOString().slice(0, 10)}:\n\n${text}\n`;
    writeFileSync(writeTo, doc.slice(0, at + start.length) + '\n' + dated + doc.slice(stop));
  }
} finally {
  if (chrome) await chrome.kill();
  server.kill('SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
}
if (failed.length) {
  console.error('Below the bar:\n  ' + failed.join('\n  '));
  process.exit(1);
}
