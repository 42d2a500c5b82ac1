import { defineConfig } from '@playwright/test';

// Debian's Chromium, started the way this machine needs (no downloads, no background network).
export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 2,
  retries: 0,
  reporter: [['list']],
  use: {
    headless: true,
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
    trace: 'off',
  },
  // The cluster tests start a Redis, a Postgres, two nodes and haproxy each: they run after the
  // rest, so their start-up never slows the timing-sensitive tests beside them.
  projects: [
    { name: 'one process', testIgnore: /cluster\.spec\.ts/ },
    { name: 'cluster', testMatch: /cluster\.spec\.ts/, dependencies: ['one process'] },
  ],
});
