import { test, expect, person, createRoom, join, say, log, members } from './burner';

test('a third person is refused from a room for two', async ({ browser, server }) => {
  const [first, second, third] = await Promise.all([1, 2, 3].map(() => person(browser, server)));
  const path = await createRoom(first, 'Just us', 2, false);
  await join(first, path, 'first');
  await join(second, path, 'second');
  await third.goto(path);
  await expect(third.getByText('2 / 2 people')).toBeVisible();
  await expect(third.getByRole('button', { name: 'Join' })).toBeEnabled();
  await third.getByLabel('Nickname').fill('third');
  await third.getByRole('button', { name: 'Join' }).click();
  await expect(third.getByRole('alert').filter({ hasText: 'full' })).toHaveText('This room is full (2/2).');
  await expect(members(first).getByRole('listitem')).toHaveCount(2);
});

test('a nickname that looks like a member’s is refused with a sentence', async ({ browser, server }) => {
  const alice = await person(browser, server);
  const twin = await person(browser, server);
  await join(alice, '/r/lobby', 'alice');
  await twin.goto('/r/lobby');
  await expect(twin.getByRole('button', { name: 'Join' })).toBeEnabled();
  await twin.getByLabel('Nickname').fill('ALICE');
  await twin.getByRole('button', { name: 'Join' }).click();
  await expect(twin.getByText('That nickname is taken in this room.')).toBeVisible();
});

test('the directory is readable and rooms can be created without JavaScript', async ({ browser, server }) => {
  const page = await person(browser, server, { javaScriptEnabled: false });
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Rooms', exact: true })).toBeVisible();
  await expect(page.getByRole('link', { name: /Lobby/ })).toContainText('0 / 1000 people');
  await page.getByLabel('Room name').fill('Plain HTML');
  await page.getByLabel('Participant limit').fill('7');
  await page.getByRole('button', { name: 'Create room' }).click();
  await expect(page).toHaveURL(/\/r\/plain-html-[a-z0-9]+$/);
  await expect(page.getByRole('heading', { name: 'Plain HTML' })).toBeVisible();
  await expect(page.getByText('0 / 7 people')).toBeVisible();
  // A refusal comes back to the form as a sentence.
  await page.goto('/');
  await page.getByLabel('Room name').fill('Plain HTML');
  await page.getByRole('button', { name: 'Create room' }).click();
  await expect(page.getByText('A room with that name (or one that looks just like it) already exists.')).toBeVisible();
});

test('the directory follows rooms and occupancy live', async ({ browser, server }) => {
  const watcher = await person(browser, server);
  const maker = await person(browser, server);
  await watcher.goto('/');
  await expect(watcher.getByRole('link', { name: /Lobby/ })).toBeVisible();
  const path = await createRoom(maker, 'Pop-up', 5, true);
  const card = watcher.getByRole('link', { name: /Pop-up/ });
  await expect(card).toContainText('0 / 5 people');
  await expect(card).toContainText('One-way');
  await join(maker, path, 'maker');
  await expect(card).toContainText('1 / 5 people');
});

test('markup in a message is shown as text, links are safe', async ({ browser, server }) => {
  const writer = await person(browser, server);
  const reader = await person(browser, server);
  await join(writer, '/r/lobby', 'writer');
  await join(reader, '/r/lobby', 'reader');
  const hostile = '<img src=x onerror=alert(1)><b>bold</b> </script><script>alert(2)</script> https://example.org/x';
  await say(writer, hostile);
  const message = log(reader).getByText('<b>bold</b>', { exact: false });
  await expect(message).toBeVisible();
  await expect(log(reader).locator('b, img, script')).toHaveCount(0);
  const link = log(reader).getByRole('link', { name: 'https://example.org/x' });
  await expect(link).toHaveAttribute('rel', 'noopener noreferrer nofollow');
  // And the same after a reload, from the page the server renders.
  await reader.reload();
  await expect(reader.getByText(hostile.replace(' https://example.org/x', ''), { exact: false })).toBeVisible();
  await expect(reader.locator('main b, main img')).toHaveCount(0);
});

test('recent messages before joining keep the server’s rows, get local times, and come back after leaving', async ({ browser, server }) => {
  const writer = await person(browser, server);
  const reader = await person(browser, server);
  const path = await createRoom(writer, 'Preview room', 5, false);
  await join(writer, path, 'writer');
  await say(writer, 'first of the preview, see https://example.org/x');
  await say(writer, 'second of the preview');
  // `say` returns once the text is sent; the reader's page shows what the server has by then.
  const page = new URL(path, writer.url()).href;
  await expect.poll(async () => (await writer.request.get(page)).text()).toContain('second of the preview');
  await reader.goto(path);
  const recent = reader.getByRole('region', { name: 'Recent messages' });
  await expect(reader.getByRole('button', { name: 'Join' })).toBeEnabled();
  // Hydrated: the rows the server wrote are still there, grouped under one header, and their
  // times are written in the reader's zone.
  await expect(recent.getByRole('listitem')).toHaveCount(2);
  await expect(recent.getByText('writer', { exact: true })).toHaveCount(1);
  await expect(recent.getByRole('link', { name: 'https://example.org/x' })).toHaveAttribute('rel', /noopener/);
  await expect(recent.locator('time')).toHaveText(/^\d{2}:\d{2}$/);
  await expect(recent.locator('time[data-at]')).toHaveCount(0);
  // Joined, then back in the lobby: the rows are drawn by the browser this time, the same way,
  // from the conversation as it was left (the page's data does not carry the messages again).
  await reader.getByLabel('Nickname').fill('reader');
  await reader.getByRole('button', { name: 'Join' }).click();
  await expect(log(reader).getByText('second of the preview')).toBeVisible();
  await say(writer, 'third, said while the reader was in');
  await expect(log(reader).getByText('third, said while the reader was in')).toBeVisible();
  await reader.getByRole('button', { name: 'Leave' }).click();
  await expect(recent.getByRole('listitem')).toHaveCount(3);
  await expect(recent.getByText('writer', { exact: true })).toHaveCount(1);
  await expect(recent.getByText('third, said while the reader was in')).toBeVisible();
  await expect(recent.locator('time')).toHaveText(/^\d{2}:\d{2}$/);
});
