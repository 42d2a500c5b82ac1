// Burner as a cluster, as `make cluster` runs it: two nodes with Redis and Postgres behind the
// repo's haproxy configuration. People in real browsers go through the load balancer and land
// on different nodes, and it is one room: they see each other, talk, and the one-way rule holds.
import { test as base, expect, person, createRoom, join, say, log, members, freePort, closePeople } from './burner';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

class Cluster {
  private child?: ChildProcess;
  output = '';
  constructor(readonly port: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The nodes' own addresses, as the script printed them. */
  get nodes(): string[] {
    return [...this.output.matchAll(/node\d+ on (127\.0\.0\.1:\d+)/g)].map((m) => `http://${m[1]}`);
  }

  async start(): Promise<void> {
    this.child = spawn(path.resolve(__dirname, '../../scripts/cluster.sh'), [], {
      // Fewest connections first, so that two people land on different nodes (by default a
      // room's members meet on one node).
      env: { ...process.env, NODES: '2', BURNER_ADDR: `127.0.0.1:${this.port}`, BALANCE: 'leastconn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.on('data', (d) => (this.output += d));
    this.child.stderr?.on('data', (d) => (this.output += d));
    const deadline = Date.now() + 45_000;
    while (!this.output.includes('Ctrl-C stops it')) {
      if (Date.now() > deadline || this.child.exitCode !== null) {
        throw new Error(`the cluster did not start:\n${this.output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

const test = base.extend<{ cluster: Cluster }>({
  cluster: async ({}, use) => {
    const cluster = new Cluster(await freePort());
    await cluster.start();
    await use(cluster);
    await closePeople();
    await cluster.stop();
  },
});

/** SIGKILLs the node listening on `node` (an http://127.0.0.1:port address). */
function killNode(node: string): void {
  const port = new URL(node).port;
  const listing = execFileSync('ss', ['-Hltnp', `sport = :${port}`]).toString();
  const pid = /pid=(\d+)/.exec(listing)?.[1];
  if (!pid) throw new Error(`no process listens on ${port}: ${listing}`);
  process.kill(Number(pid), 'SIGKILL');
}

/** Open sockets on each node, as its /healthz counts them. */
async function socketsPerNode(cluster: Cluster): Promise<number[]> {
  return Promise.all(
    cluster.nodes.map(async (node) => ((await (await fetch(`${node}/healthz`)).json()) as { connections: number }).connections),
  );
}

test('through the load balancer, two nodes are one Burner', async ({ browser, cluster }) => {
  test.setTimeout(120_000);
  expect(cluster.nodes).toHaveLength(2);
  const alice = await person(browser, cluster);
  const bob = await person(browser, cluster);
  const path = await createRoom(alice, 'Across nodes', 10, false);
  await join(alice, path, 'alice');
  await join(bob, path, 'bob');
  // The balancer sent their sockets to different nodes (fewest connections first).
  await expect.poll(() => socketsPerNode(cluster)).toEqual([1, 1]);
  await expect(members(alice).getByText('bob')).toBeVisible();
  await expect(members(bob).getByText('alice')).toBeVisible();
  await say(bob, 'hello from the other node');
  await expect(log(alice).getByText('hello from the other node')).toBeVisible();
  await say(alice, 'heard you');
  await expect(log(bob).getByText('heard you')).toBeVisible();

  // A one-way room across the two nodes: the author sees the receipt, never the words.
  const oneWay = await createRoom(bob, 'Whispers across', 10, true);
  await join(bob, oneWay, 'bob');
  await join(alice, oneWay, 'alice');
  await say(bob, 'only alice reads this');
  await expect(log(alice).getByText('only alice reads this')).toBeVisible();
  await expect(log(bob).getByText('Sent')).toBeVisible();
  await expect(log(bob).getByText('only alice reads this')).toHaveCount(0);
});

test('a member whose node is killed comes back through the balancer to what they missed', async ({ browser, cluster }) => {
  test.setTimeout(120_000);
  const alice = await person(browser, cluster);
  const bob = await person(browser, cluster);
  const path = await createRoom(bob, 'Survivors', 10, false);
  await join(alice, path, 'alice');
  await expect.poll(() => socketsPerNode(cluster)).toContain(1);
  const aliceNode = cluster.nodes[(await socketsPerNode(cluster)).indexOf(1)];
  await join(bob, path, 'bob');
  await expect.poll(() => socketsPerNode(cluster)).toEqual([1, 1]);
  await say(bob, 'before the crash');
  await expect(log(alice).getByText('before the crash')).toBeVisible();

  killNode(aliceNode);
  await say(bob, 'missed one');
  await say(bob, 'missed two');
  // alice's tab reconnects by itself, through the balancer, to the surviving node, and resumes.
  await expect(alice.getByRole('status')).toHaveText('Connected', { timeout: 30_000 });
  await expect(log(alice).getByText('missed one')).toHaveCount(1);
  await expect(log(alice).getByText('missed two')).toHaveCount(1);
  await expect(log(alice).getByText('before the crash')).toHaveCount(1);
  await expect(log(alice).getByText('Some messages were missed')).toHaveCount(0);
  await say(alice, 'back again');
  await expect(log(bob).getByText('back again')).toBeVisible();
});
