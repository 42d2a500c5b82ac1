import { test, expect, person, join, say, log, members } from './burner';

test('after the server restarts, people reconnect by themselves and keep their nickname', async ({ browser, server }) => {
  const alice = await person(browser, server);
  const bob = await person(browser, server);
  await join(alice, '/r/lobby', 'alice');
  await join(bob, '/r/lobby', 'bob');
  await say(alice, 'before the restart');
  await expect(log(bob).getByText('before the restart')).toBeVisible();

  expect(await server.stop()).toBe(0);
  await expect(alice.getByRole('status')).toContainText(/Reconnecting|Connection lost|Connecting/);
  await server.start();

  for (const page of [alice, bob]) {
    await expect(page.getByRole('status')).toHaveText('Connected', { timeout: 20_000 });
    await expect(members(page).getByText('alice')).toBeVisible();
    await expect(members(page).getByText('bob')).toBeVisible();
  }
  await expect(log(bob).getByText('The room restarted: earlier messages are gone.')).toBeVisible();
  await say(bob, 'after the restart');
  await expect(log(alice).getByText('after the restart')).toBeVisible();
  // What was on screen before stays on screen.
  await expect(log(alice).getByText('before the restart')).toBeVisible();
});

test('a message written while offline is sent once the connection is back', async ({ browser, server }) => {
  const alice = await person(browser, server);
  const bob = await person(browser, server);
  await join(alice, '/r/lobby', 'alice');
  await join(bob, '/r/lobby', 'bob');
  await server.stop();
  await expect(alice.getByRole('status')).not.toHaveText('Connected');
  await say(alice, 'written offline');
  await expect(log(alice).getByText('Waiting for the connection…')).toBeVisible();
  await server.start();
  await expect(log(bob).getByText('written offline')).toHaveCount(1, { timeout: 20_000 });
  await expect(log(alice).getByText('Waiting for the connection…')).toHaveCount(0);
});
