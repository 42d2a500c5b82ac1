// A room bridged to Discord, against the local Discord stand-in (its REST API and gateway, the
// binary `discord-standin`): a moderator links the room in the console, a person in the room sees
// a Discord message arrive marked as from Discord, and their own message reaches the channel.
import { test as base, expect, person, join, say, log, moderator, Server, freePort, closePeople } from './burner';
import { spawn, type ChildProcess } from 'node:child_process';
import { homedir } from 'node:os';
import * as path from 'node:path';

const standinBinary = path.resolve(
  process.env.BURNER_BIN ? path.dirname(process.env.BURNER_BIN) : path.resolve(homedir(), '.cache/burner/target/release'),
  'discord-standin',
);
const CHANNEL = '600';

class StandIn {
  private child?: ChildProcess;
  apiUrl = '';
  gatewayUrl = '';

  async start(): Promise<void> {
    this.child = spawn(standinBinary, ['--port', '0', '--token', 'e2e-discord-token'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    this.child.stdout?.on('data', (d) => (output += d));
    const deadline = Date.now() + 10_000;
    while (!output.includes('\n')) {
      if (Date.now() > deadline || this.child.exitCode !== null) throw new Error(`the stand-in did not start: ${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const urls = JSON.parse(output.split('\n')[0]);
    this.apiUrl = urls.api_url;
    this.gatewayUrl = urls.gateway_url;
  }

  /** Someone writes in the Discord channel. */
  async userSays(name: string, content: string): Promise<void> {
    const response = await fetch(`${this.apiUrl}/_standin/channels/${CHANNEL}/user_messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: 42, user_name: name, content }),
    });
    expect(response.ok).toBeTruthy();
  }

  /** What the channel holds: each message's author and its text (an embed's author line and description for the bot's). */
  async messages(): Promise<{ author: string; text: string }[]> {
    const response = await fetch(`${this.apiUrl}/_standin/channels/${CHANNEL}/messages`);
    const messages = await response.json();
    return messages.map((m: any) =>
      m.embeds?.length ? { author: m.embeds[0].author?.name, text: m.embeds[0].description } : { author: m.author.username, text: m.content },
    );
  }

  stop(): void {
    this.child?.kill('SIGTERM');
  }
}

const test = base.extend<{ discord: StandIn; bridged: Server }>({
  discord: async ({}, use) => {
    const discord = new StandIn();
    await discord.start();
    await use(discord);
    discord.stop();
  },
  bridged: async ({ discord }, use) => {
    const server = new Server(await freePort());
    await server.start({
      BURNER_DISCORD_TOKEN: 'e2e-discord-token',
      BURNER_DISCORD_API_URL: discord.apiUrl,
      BURNER_DISCORD_GATEWAY_URL: discord.gatewayUrl,
    });
    await use(server);
    await closePeople();
    await server.stop();
  },
});

test('a person in a bridged room talks with a Discord channel', async ({ browser, bridged, discord }) => {
  const mod = await moderator(browser, bridged);
  await expect(mod.getByText(/Discord bridge: connected/)).toBeVisible();
  const lobby = mod.getByRole('article', { name: 'Lobby' });
  await lobby.getByRole('button', { name: 'Link Discord channel' }).click();
  await mod.getByLabel('Discord channel id').fill(CHANNEL);
  await mod.getByRole('button', { name: 'Link', exact: true }).click();
  await expect(mod.getByText('Lobby is bridged to Discord #general.')).toBeVisible();
  await expect(lobby.getByText('Bridged to Discord #general')).toBeVisible();

  const alice = await person(browser, bridged);
  await alice.goto('/r/lobby');
  await expect(alice.getByText('Bridged to Discord #general')).toBeVisible();
  await join(alice, '/r/lobby', 'alice');
  await say(alice, 'hello, Discord');
  await expect.poll(() => discord.messages()).toContainEqual({ author: 'alice', text: 'hello, Discord' });

  await discord.userSays('dana', 'hi from the Discord side');
  const message = log(alice).getByRole('listitem').filter({ hasText: 'hi from the Discord side' });
  await expect(message).toBeVisible();
  await expect(message).toContainText('dana');
  await expect(message.getByText('Discord', { exact: true })).toBeVisible();
  // Nothing came back twice, in either direction.
  await expect.poll(() => discord.messages()).toHaveLength(2);
  await expect(log(alice).getByText('hello, Discord')).toHaveCount(1);
});
