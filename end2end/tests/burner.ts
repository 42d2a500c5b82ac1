// A real Burner server per test (the release binary the test script built), on a free port,
// and helpers that act as a person would: by labels and roles, never by CSS internals.
import { test as base, expect, type Page, type Browser, type BrowserContext } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import * as path from 'node:path';

const binary = process.env.BURNER_BIN ?? path.resolve(homedir(), '.cache/burner/target/release/burner');
const siteDir = process.env.BURNER_SITE_DIR ?? path.resolve(__dirname, '../../target/site');
/** Every test server's moderator token. */
export const MOD_TOKEN = 'e2e-moderator-token';

export class Server {
  private child?: ChildProcess;
  log = '';
  /** Its own data directory (the SQLite file), kept across restarts of this server. */
  readonly dataDir = mkdtempSync(path.join(tmpdir(), 'burner-e2e-'));
  constructor(readonly port: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(extraEnv: Record<string, string> = {}): Promise<void> {
    this.child = spawn(binary, ['--site-dir', siteDir], {
      env: {
        ...process.env,
        BURNER_ADDR: `127.0.0.1:${this.port}`,
        BURNER_LOG: 'warn',
        BURNER_DATA_DIR: this.dataDir,
        BURNER_MOD_TOKEN: MOD_TOKEN,
        // Many people from one address (127.0.0.1) in a short test.
        BURNER_JOIN_BURST_PER_IP: '1000',
        BURNER_CONNECT_BURST_PER_IP: '1000',
        BURNER_MAX_CONNECTIONS_PER_IP: '1000',
        BURNER_ROOM_CREATE_BURST: '1000',
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.on('data', (d) => (this.log += d));
    this.child.stderr?.on('data', (d) => (this.log += d));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      try {
        const response = await fetch(`${this.url}/healthz`);
        if (response.ok) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`Burner did not start on ${this.url}:\n${this.log}`);
  }

  /** SIGTERM, as an operator would, and wait for the process to end. */
  async stop(): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    return exited;
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolvePort(port));
    });
  });
}

/** Every person's browser context of the running test (see `closePeople`). */
const people = new Set<BrowserContext>();

/**
 * Closes the browser contexts `person` opened. A worker's browser outlives its tests: a page left
 * open after its server stopped goes on reconnecting, its status dot pulsing, and a few dozen of
 * them kept both cores busy painting (the suite ran 2–5× slower than its tests alone). Servers'
 * fixtures call this before they stop a server; it runs again after every test.
 */
export async function closePeople(): Promise<void> {
  const open = [...people];
  people.clear();
  await Promise.all(open.map((context) => context.close()));
}

export const test = base.extend<{ server: Server; closesPeople: void }>({
  closesPeople: [
    async ({}, use) => {
      await use();
      await closePeople();
    },
    { auto: true },
  ],
  server: async ({}, use) => {
    const server = new Server(await freePort());
    await server.start();
    await use(server);
    await closePeople();
    await server.stop();
    rmSync(server.dataDir, { recursive: true, force: true });
  },
});

export { expect };

/** A new person: their own browser context (own storage, own tab session). */
export async function person(
  browser: Browser,
  server: { url: string },
  options: Parameters<Browser['newContext']>[0] = {},
): Promise<Page> {
  const context = await browser.newContext({ baseURL: server.url, ...options });
  people.add(context);
  const page = await context.newPage();
  page.on('dialog', (dialog) => {
    throw new Error(`unexpected dialog: ${dialog.message()}`);
  });
  return page;
}

export async function createRoom(page: Page, name: string, limit: number, oneWay: boolean): Promise<string> {
  await page.goto('/');
  await page.getByLabel('Room name').fill(name);
  await page.getByLabel('Participant limit').fill(String(limit));
  if (oneWay) await page.getByLabel('One-way').check();
  await page.getByRole('button', { name: 'Create room' }).click();
  await page.waitForURL(/\/r\/[a-z0-9-]+$/);
  return new URL(page.url()).pathname;
}

export async function join(page: Page, path: string, nickname: string): Promise<void> {
  if (new URL(page.url(), 'http://x').pathname !== path) await page.goto(path);
  const button = page.getByRole('button', { name: 'Join' });
  await expect(button).toBeEnabled(); // the page is live (hydrated)
  await page.getByLabel('Nickname').fill(nickname);
  await button.click();
  await expect(page.getByRole('log', { name: 'Messages' })).toBeVisible();
  await expect(page.getByRole('status')).toHaveText('Connected');
}

export async function say(page: Page, text: string): Promise<void> {
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.fill(text);
  await box.press('Enter');
  await expect(box).toHaveValue('');
}

export function log(page: Page) {
  return page.getByRole('log', { name: 'Messages' });
}

export function members(page: Page) {
  return page.getByRole('region', { name: 'Members' });
}

/** A moderator: their own browser context, signed in at /mod, the console live. */
export async function moderator(browser: Browser, server: Server, options: Parameters<Browser['newContext']>[0] = {}): Promise<Page> {
  const page = await person(browser, server, options);
  await page.goto('/mod');
  await page.getByLabel('Moderator token').fill(MOD_TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/mod$/);
  await expect(page.getByRole('heading', { name: /^Rooms/ })).toBeVisible();
  await expect(liveness(page)).toHaveText('Connected');
  return page;
}

/** The console's connection status, in its header. */
export function liveness(console: Page) {
  return console.getByRole('banner').getByRole('status');
}

/** Makes the page believe its tab went to the background (or came back), as a browser tells it. */
export async function setHidden(page: Page, hidden: boolean): Promise<void> {
  await page.evaluate((hidden) => {
    Object.defineProperty(document, 'hidden', { value: hidden, configurable: true });
    Object.defineProperty(document, 'visibilityState', { value: hidden ? 'hidden' : 'visible', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}
