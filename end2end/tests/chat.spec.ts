// What people expect of a chat: typing, unread counts, mentions, completion, grouping, the
// phone keyboard, and not being yanked down while reading back.
import { test, expect, person, createRoom, join, say, log, members, setHidden } from './burner';
import type { Page } from '@playwright/test';

function typing(page: Page) {
  return page.locator('[data-typing]');
}

function composer(page: Page) {
  return page.getByRole('textbox', { name: 'Message' });
}

test('the other person sees someone typing, gone when the message arrives or the typing stops', async ({ browser, server }) => {
  const alice = await person(browser, server);
  const bob = await person(browser, server);
  const path = await createRoom(alice, 'Typing', 10, false);
  await join(alice, path, 'alice');
  await join(bob, path, 'bob');
  await expect(members(alice).getByText('bob')).toBeVisible();

  await composer(alice).pressSequentially('hello th');
  await expect(typing(bob)).toHaveText('alice is typing…');
  await expect(typing(alice)).toHaveText('', { timeout: 1_000 });
  await composer(alice).pressSequentially('ere');
  await composer(alice).press('Enter');
  await expect(log(bob).getByText('hello there')).toBeVisible();
  // At once with the message, not six seconds later.
  await expect(typing(bob)).toHaveText('', { timeout: 1_000 });

  // Two at once, then silence: gone about six seconds after the last keystroke.
  const carol = await person(browser, server);
  await join(carol, path, 'carol');
  await composer(alice).pressSequentially('so');
  await composer(carol).pressSequentially('well');
  await expect(typing(bob)).toHaveText(/^(alice and carol|carol and alice) are typing…$/);
  const stopped = Date.now();
  await expect(typing(bob)).toHaveText('', { timeout: 9_000 });
  const shownFor = Date.now() - stopped;
  expect(shownFor).toBeGreaterThan(4_000);
});

test('someone typing in a one-way room is seen typing, never read', async ({ browser, server }) => {
  const writer = await person(browser, server);
  const reader = await person(browser, server);
  const path = await createRoom(writer, 'Quiet typing', 10, true);
  await join(writer, path, 'writer');
  await join(reader, path, 'reader');
  await composer(writer).pressSequentially('a secret');
  await expect(typing(reader)).toHaveText('writer is typing…');
  await expect(log(reader)).not.toContainText('a secret');
});

test('a hidden tab counts new messages in its title and icon, and forgets them when shown', async ({ browser, server }) => {
  const reader = await person(browser, server);
  const writer = await person(browser, server);
  const path = await createRoom(reader, 'Unread', 10, false);
  await join(reader, path, 'reader');
  await join(writer, path, 'writer');
  await expect(reader).toHaveTitle('Unread · Burner');

  await setHidden(reader, true);
  await say(writer, 'one');
  await say(writer, 'two');
  await say(writer, 'three');
  await expect(reader).toHaveTitle('(3) Unread · Burner');
  await expect(reader.locator('link[rel=icon]')).toHaveAttribute('href', /^data:image\/svg\+xml,.*circle/);
  // Your own messages are not news to you.
  await say(reader, 'mine');
  await expect(reader).toHaveTitle('(3) Unread · Burner');

  await setHidden(reader, false);
  await expect(reader).toHaveTitle('Unread · Burner');
  await expect(reader.locator('link[rel=icon]')).toHaveAttribute('href', '/pkg/favicon.svg');
});

test('a mention is highlighted, look-alikes included, and notifies only when asked to', async ({ browser, server }) => {
  const alice = await person(browser, server, { permissions: ['notifications'] });
  await alice.addInitScript(() => {
    const Real = window.Notification;
    (window as any).shown = [];
    (window as any).Notification = class extends Real {
      constructor(title: string, options?: NotificationOptions) {
        super(title, options);
        (window as any).shown.push([title, options?.body]);
      }
    };
  });
  const bob = await person(browser, server);
  const path = await createRoom(alice, 'Mentions', 10, false);
  await join(alice, path, 'alice');
  await join(bob, path, 'bob');

  await say(bob, 'no mention here, alice');
  await say(bob, '@ALICE look at this');
  const mentioning = log(alice).getByRole('listitem').filter({ hasText: 'look at this' });
  await expect(mentioning).toContainText('Mentions you:');
  await expect(log(alice).getByRole('listitem').filter({ hasText: 'no mention here' })).not.toContainText('Mentions you');
  // Not for bob, who wrote it: he is not mentioned.
  await expect(log(bob).getByRole('listitem').filter({ hasText: 'look at this' })).not.toContainText('Mentions you');

  // In the background, without having asked: no notification.
  await setHidden(alice, true);
  await say(bob, '@alice are you there?');
  await expect(alice).toHaveTitle(/^\(1\) /);
  expect(await alice.evaluate(() => (window as any).shown.length)).toBe(0);

  await setHidden(alice, false);
  const toggle = members(alice).getByRole('button', { name: 'Notify me when mentioned' });
  await toggle.click();
  await expect(toggle).toHaveAttribute('aria-pressed', 'true');
  await setHidden(alice, true);
  await say(bob, 'hey @аlice'); // Cyrillic а: looks the same, mentions the same person
  await expect.poll(() => alice.evaluate(() => (window as any).shown)).toEqual([['bob mentioned you in Mentions', 'hey @аlice']]);
  // Not mentioned: no notification, even in the background.
  await say(bob, 'just chatting');
  await expect(alice).toHaveTitle(/^\(2\) /);
  expect(await alice.evaluate(() => (window as any).shown.length)).toBe(1);
});

test('a big room lists its newest hundred members, counts everyone, and shows the rest on request', async ({ browser, server }) => {
  const host = await person(browser, server);
  const path = await createRoom(host, 'Crowd', 200, false);
  const slug = path.split('/').pop();
  // 110 quiet members, one after the other (so their join order is known), as sockets of the
  // host's page.
  await host.evaluate(async (slug) => {
    const crowd: WebSocket[] = [];
    (window as any).crowd = crowd;
    for (let i = 0; i < 110; i++) {
      const ws = new WebSocket(`ws://${location.host}/ws?v=1&room=${slug}`);
      crowd.push(ws);
      await new Promise((joined) => {
        ws.onopen = () =>
          ws.send(JSON.stringify({ type: 'join', room: slug, nickname: i === 2 ? 'zed' : `guest${i}`, session: `crowd-session-${String(i).padStart(10, '0')}` }));
        ws.onmessage = (event) => String(event.data).includes('"type":"joined"') && joined(null);
      });
    }
  }, slug);
  const viewer = await person(browser, server);
  await join(viewer, path, 'viewer');
  const panel = members(viewer);
  await expect(panel.getByRole('heading')).toHaveText('Members 111');
  await expect(panel.getByRole('listitem')).toHaveCount(100);
  await expect(panel.getByRole('button', { name: 'Show 11 more members' })).toBeVisible();
  await expect(panel.getByText('viewer', { exact: true })).toBeAttached();
  await expect(panel.getByText('guest10', { exact: true })).toHaveCount(0);
  await expect(panel.getByText('guest11', { exact: true })).toBeAttached();
  // Someone not listed speaks: Tab completes their name too.
  await host.evaluate(() => (window as any).crowd[2].send(JSON.stringify({ type: 'send_message', text: 'hello from the back' })));
  await expect(log(viewer).getByText('hello from the back')).toBeVisible();
  const box = composer(viewer);
  await box.pressSequentially('hi @ze');
  await box.press('Tab');
  await expect(box).toHaveValue('hi @zed ');
  await box.fill('');
  // An unlisted member leaves: only the count changes. A listed one: the list too.
  await host.evaluate(() => (window as any).crowd[0].close());
  await expect(panel.getByRole('heading')).toHaveText('Members 110');
  await expect(panel.getByRole('button', { name: 'Show 10 more members' })).toBeVisible();
  await host.evaluate(() => (window as any).crowd[109].close());
  await expect(panel.getByRole('heading')).toHaveText('Members 109');
  await expect(panel.getByRole('listitem')).toHaveCount(99);
  await expect(panel.getByRole('button', { name: 'Show 10 more members' })).toBeVisible();
  // The rest come a page at a time, and stay up to date like the others.
  await panel.getByRole('button', { name: 'Show 10 more members' }).click();
  await expect(panel.getByRole('listitem')).toHaveCount(109);
  await expect(panel.getByText('guest1', { exact: true })).toBeAttached();
  await expect(panel.getByRole('button', { name: /^Show \d+ more members/ })).toBeHidden();
  await expect(panel.getByRole('heading')).toBeFocused(); // not lost with the button
  await host.evaluate(() => (window as any).crowd[5].close());
  await expect(panel.getByRole('heading')).toHaveText('Members 108');
  await expect(panel.getByRole('listitem')).toHaveCount(108);
  await expect(panel.getByText('guest5', { exact: true })).toHaveCount(0);
});

test('Tab completes a nickname from the member list, and again to the next one', async ({ browser, server }) => {
  const alice = await person(browser, server);
  const path = await createRoom(alice, 'Completion', 10, false);
  await join(alice, path, 'alice');
  for (const name of ['Bob', 'bobby', 'carol']) {
    const other = await person(browser, server);
    await join(other, path, name);
  }
  await expect(members(alice).getByRole('listitem')).toHaveCount(4);

  const box = composer(alice);
  await box.pressSequentially('thanks @bo');
  await box.press('Tab');
  await expect(box).toHaveValue('thanks @Bob ');
  await box.press('Tab');
  await expect(box).toHaveValue('thanks @bobby ');
  await box.press('Tab');
  await expect(box).toHaveValue('thanks @Bob ');
  await box.pressSequentially('and car');
  await box.press('Tab');
  await expect(box).toHaveValue('thanks @Bob and @carol ');
  await expect(box).toBeFocused();

  // Nothing to complete: Tab moves on, as everywhere.
  await box.pressSequentially('zz');
  await box.press('Tab');
  await expect(box).not.toBeFocused();
  await expect(box).toHaveValue('thanks @Bob and @carol zz');
});

test('messages in a row by one person share one header', async ({ browser, server }) => {
  const alice = await person(browser, server);
  const bob = await person(browser, server);
  const path = await createRoom(alice, 'Grouping', 10, false);
  await join(alice, path, 'alice');
  await join(bob, path, 'bob');
  await say(bob, 'first');
  await say(bob, 'second');
  await say(bob, 'third');
  // Each replies after reading: bob sends one message at a time, so a reply typed before his
  // last one arrived may rightly reach the room before it.
  const view = log(alice);
  await expect(view.getByText('third')).toBeVisible();
  await say(alice, 'mine');
  await expect(log(bob).getByText('mine')).toBeVisible();
  await say(bob, 'fourth');
  await expect(view.getByText('fourth')).toBeVisible();
  // bob's name heads two groups (three messages, then one after alice's); the rest continue.
  // Each row as alice sees it: "# name text" for a header, the text alone for a continuation.
  const rows = () =>
    view.locator('li:visible').evaluateAll((items) =>
      items
        .filter((li) => /first|second|third|mine|fourth/.test(li.textContent ?? ''))
        .map((li) => {
          const text = (li as HTMLElement).innerText.replace(/\d\d:\d\d|\(you\)|Report/g, '');
          return `${li.hasAttribute('data-continued') ? '' : '# '}${text.replace(/\s+/g, ' ').trim()}`;
        }),
    );
  await expect.poll(rows).toEqual(['# bob first', 'second', 'third', '# alice mine', '# bob fourth']);
  await expect(view.getByText('bob', { exact: true }).filter({ visible: true })).toHaveCount(2);
  // The time of every message is there, with its full date on hover.
  const time = view.getByRole('listitem').filter({ hasText: 'second' }).locator('time').first();
  await expect(time).toHaveAttribute('title', /\d{4}/);
  // Today's messages need no date divider.
  await expect(view.getByText('Today')).toHaveCount(0);
  // Screen readers hear the newest message from someone else (not alice's own, not presence).
  await expect(alice.locator('p[aria-live="polite"]')).toHaveText('bob: fourth');
});

test('a message that had to wait does not split the group that arrived below it', async ({ browser, server }) => {
  await server.stop();
  // Joining costs 3 of a burst of 5: two messages at once, then one every 12 s (long enough
  // that a loaded machine cannot take so long between a2 and a3 that a3 need not wait).
  await server.start({ BURNER_MESSAGE_BURST: '5', BURNER_MESSAGE_INTERVAL: '12s' });
  const alice = await person(browser, server);
  const bob = await person(browser, server);
  await join(alice, '/r/lobby', 'alice');
  await join(bob, '/r/lobby', 'bob');
  await say(alice, 'a1');
  await say(alice, 'a2');
  // Posted, not just waiting in alice's own log (a loaded page may hold it a moment): bob's
  // log shows only what the room took, so b1 cannot land between a1 and a2.
  await expect(log(bob).getByText('a2', { exact: true })).toBeVisible();
  await say(bob, 'b1');
  await expect(log(alice).getByText('b1', { exact: true })).toBeVisible();
  // Over the rate: alice's a3 waits in her log while bob's b2 arrives below it.
  await say(alice, 'a3');
  await expect(alice.getByRole('alert')).toContainText('Slow down');
  await say(bob, 'b2');
  await expect(log(alice).getByText('b2', { exact: true })).toBeVisible();
  // Once a3 goes, it lands after b2, and b2 continues b1 under one header.
  await expect(alice.getByRole('alert')).toHaveText(/^\s*$/, { timeout: 20_000 });
  const view = log(alice);
  await expect(view.getByRole('listitem').last()).toContainText('a3');
  await expect(view.getByText('bob', { exact: true }).filter({ visible: true })).toHaveCount(1);
  await expect(view.locator('li[data-continued]').filter({ hasText: 'b2' })).toHaveCount(1);
});

test('a day divider marks where the date changes', async ({ browser, server }) => {
  const writer = await person(browser, server);
  const path = await createRoom(writer, 'Overnight', 10, false);
  await join(writer, path, 'writer');
  await say(writer, 'said today');
  // A reader whose clock says it is tomorrow: what was said today is yesterday's.
  const reader = await person(browser, server);
  await reader.clock.setFixedTime(Date.now() + 24 * 3600 * 1000);
  await join(reader, path, 'reader');
  const divider = log(reader).getByRole('listitem').filter({ hasText: /^Yesterday$/ });
  await expect(divider).toHaveCount(1);
  await expect(log(reader).getByText('said today')).toBeVisible();
  await say(writer, 'and again');
  await expect(log(reader).getByText('and again')).toBeVisible();
  await expect(divider).toHaveCount(1);
});

test('reading back is never yanked down: a button offers the new messages', async ({ browser, server }) => {
  const reader = await person(browser, server, { viewport: { width: 800, height: 500 } });
  const writer = await person(browser, server);
  const path = await createRoom(reader, 'Backlog', 10, false);
  await join(reader, path, 'reader');
  await join(writer, path, 'writer');
  for (let i = 1; i <= 8; i++) await say(writer, `line ${i}\nwith a second row\nand a third`);
  await expect(log(reader).getByText(/^line 8/)).toBeInViewport();

  await log(reader).evaluate((el) => (el.scrollTop = 0));
  await expect(log(reader).getByText(/^line 1/)).toBeInViewport();
  await say(writer, 'something new');
  const jump = reader.getByRole('button', { name: 'New messages' });
  await expect(jump).toBeVisible();
  await expect(log(reader).getByText(/^line 1/)).toBeInViewport();
  await jump.click();
  await expect(log(reader).getByText('something new')).toBeInViewport();
  await expect(jump).toHaveCount(0);
});

test('on a phone the keyboard never covers the composer, and the newest message stays in view', async ({ browser, server }) => {
  const phone = await person(browser, server, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const other = await person(browser, server);
  const path = await createRoom(other, 'Pocket', 10, false);
  await join(phone, path, 'phone');
  await join(other, path, 'other');
  for (let i = 1; i <= 8; i++) await say(other, `message ${i}\nwith more\nand more`);
  await expect(log(phone).getByText(/^message 8/)).toBeInViewport();
  // The header says the connection state whole (a dot with its name), never "Co…".
  await expect(phone.getByRole('status')).toHaveText('Connected');
  await expect(phone.getByRole('button', { name: 'Leave' })).toBeInViewport();

  // A keyboard that only shrinks the visual viewport (as iOS does).
  await composer(phone).focus();
  await phone.evaluate(() => {
    Object.defineProperty(window.visualViewport, 'height', { value: 420, configurable: true });
    window.visualViewport!.dispatchEvent(new Event('resize'));
  });
  await expect
    .poll(async () => (await composer(phone).boundingBox())!.y + (await composer(phone).boundingBox())!.height)
    .toBeLessThanOrEqual(420);
  await expect(log(phone).getByText(/^message 8/)).toBeInViewport();
  await say(other, 'message 9');
  await expect(log(phone).getByText('message 9')).toBeInViewport();

  // A keyboard that resizes the page (Chromium on Android, `interactive-widget`).
  await phone.evaluate(() => {
    delete (window.visualViewport as any).height;
    window.visualViewport!.dispatchEvent(new Event('resize'));
  });
  await phone.setViewportSize({ width: 390, height: 480 });
  await expect(composer(phone)).toBeInViewport({ ratio: 1 });
  await expect(log(phone).getByText('message 9')).toBeInViewport();

  // The member panel covers the log on a phone; Escape puts it away.
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.getByRole('button', { name: 'People' }).click();
  await expect(members(phone)).toBeVisible();
  await members(phone).getByRole('button', { name: 'Notify me when mentioned' }).focus();
  await phone.keyboard.press('Escape');
  await expect(members(phone)).toBeHidden();
});
