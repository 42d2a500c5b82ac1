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
  // Waiting for the next try, the page shows a countdown and runs no animation (a page left
  // offline must not repaint all the while): both read at the same moment, in the page.
  await expect
    .poll(() =>
      alice.evaluate(() => {
        const waiting = /Reconnecting in/.test(document.querySelector('[role="status"]')?.textContent ?? '');
        const running = document.getAnimations().filter((a) => a.playState === 'running').length;
        return waiting && running === 0;
      }),
    )
    .toBe(true);
  await server.start();

  for (const page of [alice, bob]) {
    await expect(page.getByRole('status')).toHaveText('Connected', { timeout: 20_000 });
    await expect(members(page).getByText('alice')).toBeVisible();
    await expect(members(page).getByText('bob')).toBeVisible();
  }
  await expect(log(bob).getByText('The room restarted: earlier messages are gone.')).toBeVisible();
  await say(bob, 'after the restart');
  await expect(log(alice).getByText('after the restart')).toBeVisible();
  await alice.waitForTimeout(500);
  await expect(log(alice).getByText('after the restart')).toHaveCount(1);
  // What was on screen before stays on screen.
  await expect(log(alice).getByText('before the restart')).toBeVisible();
});

test('messages written while offline are all sent, once each, when the connection is back', async ({ browser, server }) => {
  const alice = await person(browser, server);
  const bob = await person(browser, server);
  await join(alice, '/r/lobby', 'alice');
  await join(bob, '/r/lobby', 'bob');
  await server.stop();
  await expect(alice.getByRole('status')).not.toHaveText('Connected');
  // More than the message burst allows at once after a rejoin: the rest wait their turn.
  for (let i = 1; i <= 12; i++) await say(alice, `offline note ${i}`);
  await expect(log(alice).getByText('Waiting for the connection…')).toHaveCount(12);
  await server.start();
  await expect(log(bob).getByText('offline note 12', { exact: true })).toBeVisible({ timeout: 30_000 });
  await expect(log(alice).getByText('Waiting for the connection…')).toHaveCount(0);
  await bob.waitForTimeout(1_000);
  for (let i = 1; i <= 12; i++) {
    await expect(log(bob).getByText(`offline note ${i}`, { exact: true })).toHaveCount(1);
  }
  const order = await log(bob).getByText(/^offline note \d+$/).allInnerTexts();
  expect(order).toEqual(Array.from({ length: 12 }, (_, i) => `offline note ${i + 1}`));
});
