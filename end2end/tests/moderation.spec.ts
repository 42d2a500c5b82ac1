import { test, expect, person, createRoom, join, say, log, moderator, liveness } from './burner';

test('a moderator bans a member, who sees why and cannot come back from a fresh browser', async ({ browser, server }) => {
  const raider = await person(browser, server);
  const bystander = await person(browser, server);
  const path = await createRoom(raider, 'Target practice', 10, false);
  await join(raider, path, 'raider');
  await join(bystander, path, 'bystander');
  await say(raider, 'spam spam spam');

  const mod = await moderator(browser, server);
  const row = mod.getByRole('row', { name: /raider/ });
  await expect(row).toBeVisible();
  await row.getByRole('button', { name: 'Ban' }).click();
  await mod.getByLabel('Reason').fill('Spamming the room');
  await expect(mod.getByLabel('Duration')).toHaveValue('7d');
  await mod.getByRole('button', { name: 'Confirm ban' }).click();
  await expect(mod.getByText(/^Banned until /)).toBeVisible();
  await expect(mod.getByRole('region', { name: 'Bans in force' })).toContainText('Spamming the room');

  // The member's page says why, at once.
  await expect(raider.getByRole('alert')).toContainText(/You are banned until .+ UTC\. Reason: Spamming the room$/);
  await expect(raider.getByLabel('Nickname')).toHaveCount(0);
  // Everyone here comes from 127.0.0.1, so the bystander is banned with them; the moderator,
  // signed in, is not.
  await expect(bystander.getByRole('alert')).toContainText('You are banned until ');
  await expect(liveness(mod)).toHaveText('Connected');

  // A fresh context (new cookies, new tab session, new nickname) gets the notice, not a form.
  const again = await person(browser, server);
  await again.goto(path);
  await expect(again.getByText(/You are banned until .+ Reason: Spamming the room/)).toBeVisible();
  await expect(again.getByLabel('Nickname')).toHaveCount(0);
  await again.goto('/');
  await expect(again.getByText(/You are banned until/)).toBeVisible();
  await expect(again.getByRole('button', { name: 'Create room' })).toHaveCount(0);

  // Lifted, the door is open again.
  await mod.getByRole('button', { name: 'Lift' }).click();
  await expect(mod.getByText('The ban is lifted.')).toBeVisible();
  const back = await person(browser, server);
  await join(back, path, 'reformed');
});

test('a message over the rate waits with a countdown and goes by itself', async ({ browser, server }) => {
  await server.stop();
  // Joining costs 3 of a burst of 4: one message, then a wait of 12 s (long enough that a
  // loaded machine cannot take so long between the join and the second message that it need
  // not wait).
  await server.start({ BURNER_MESSAGE_BURST: '4', BURNER_MESSAGE_INTERVAL: '12s' });
  const talker = await person(browser, server);
  const listener = await person(browser, server);
  await join(listener, '/r/lobby', 'listener');
  await join(talker, '/r/lobby', 'talker');
  await say(talker, 'first');
  await say(talker, 'second');
  const alert = talker.getByRole('alert');
  await expect(alert).toContainText('Slow down: you are sending messages too fast.');
  await expect(alert).toContainText(/You can send again in ([2-9]|1[0-2])s\./);
  // It counts down. (Polled often: a loaded machine may draw a second late, and Playwright's own
  // polling slows to once a second, which could step over any one number.)
  const secondsLeft = async () => Number((await alert.textContent())?.match(/again in (\d+)s/)?.[1] ?? 0);
  const first = await secondsLeft();
  await expect
    .poll(async () => { const left = await secondsLeft(); return left >= 1 && left < first; }, { intervals: [100], timeout: 13_000 })
    .toBe(true);
  // Nothing typed is lost: it waits in the log, then arrives.
  await expect(log(listener).getByText('second', { exact: true })).toBeVisible({ timeout: 16_000 });
  await expect(alert).toHaveText(/^\s*$/);
  await expect(log(listener).getByText('first', { exact: true })).toHaveCount(1);
  await expect(log(listener).getByText('second', { exact: true })).toHaveCount(1);
});

test('a profane word is masked in a room that masks', async ({ browser, server }) => {
  const author = await person(browser, server);
  const reader = await person(browser, server);
  await author.goto('/');
  await expect(author.getByLabel('Profanity filter')).toHaveValue('mask');
  const path = await createRoom(author, 'Polite company', 10, false);
  await join(author, path, 'author');
  await join(reader, path, 'reader');
  await say(author, 'what the fuck happened here');
  const line = log(reader).getByText(/^what the .+ happened here$/);
  await expect(line).toBeVisible();
  await expect(line).not.toContainText('fuck');
  await expect(line).toContainText('*');
});

test('a report reaches the console with the room as it was', async ({ browser, server }) => {
  const author = await person(browser, server);
  const reporter = await person(browser, server);
  const path = await createRoom(author, 'Marketplace', 10, false);
  await join(author, path, 'seller');
  await join(reporter, path, 'buyer');
  await say(author, 'cheap followers at my site');
  await say(author, 'really cheap');
  const mod = await moderator(browser, server);
  const reports = mod.getByRole('region', { name: /^Reports/ });
  await expect(reports).toContainText('No reports.');

  const message = log(reporter).getByRole('listitem').filter({ hasText: 'cheap followers at my site' });
  await message.hover();
  await message.getByRole('button', { name: 'Report' }).click();
  await expect(message.getByRole('button', { name: 'Reported' })).toBeVisible();
  await expect(log(reporter).getByText('Thanks: the moderators will take a look.')).toBeVisible();

  // Live: no reload.
  await expect(reports).toContainText('cheap followers at my site');
  await expect(reports).toContainText('really cheap');
  await reports.getByRole('button', { name: 'Delete message' }).click();
  await mod.getByRole('button', { name: 'Confirm delete' }).click();
  // Every action says why, for the audit log.
  await expect(mod.getByRole('alert')).toHaveText('Give a reason: it goes to the audit log.');
  await mod.getByLabel('Reason').fill('Spam');
  await mod.getByRole('button', { name: 'Confirm delete' }).click();
  await expect(mod.getByText('The message is deleted.')).toBeVisible();
  await expect(log(reporter).getByText('cheap followers at my site')).toHaveCount(0);
  await expect(log(author).getByText('cheap followers at my site')).toHaveCount(0);
  await reports.getByRole('button', { name: 'Resolve' }).click();
  await expect(reports).toContainText('resolved');
  await expect(mod.getByRole('region', { name: 'Audit log' })).toContainText('delete message');
});
