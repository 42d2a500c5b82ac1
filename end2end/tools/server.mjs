// A release Burner for the measuring tools (Lighthouse, time to interactive): started on a free
// port with its own data directory, and a lobby with 50 messages in it.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import * as path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);
const binary = process.env.BURNER_BIN ?? path.resolve(homedir(), '.cache/burner/target/release/burner');
const siteDir = process.env.BURNER_SITE_DIR ?? path.resolve(here, '../../target/site');

export async function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

export async function startServer(port, dataDir, env = {}) {
  const child = spawn(binary, ['--site-dir', siteDir], {
    env: {
      ...process.env,
      ...env,
      BURNER_ADDR: `127.0.0.1:${port}`,
      BURNER_LOG: 'warn',
      BURNER_DATA_DIR: dataDir,
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
export async function seedLobby(port) {
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
