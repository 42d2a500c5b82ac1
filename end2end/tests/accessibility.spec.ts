// axe-core as an outside grader on every page state, in both themes and at both sizes:
// zero violations is the bar.
import AxeBuilder from '@axe-core/playwright';
import { test, expect, person, createRoom, join, say, moderator, type Server } from './burner';
import type { Browser, Page } from '@playwright/test';

test.describe.configure({ timeout: 150_000 });

type Look = { colorScheme: 'light' | 'dark'; viewport: { width: number; height: number } };

const LOOKS: Record<string, Look> = {
  'desktop light': { colorScheme: 'light', viewport: { width: 1280, height: 800 } },
  'desktop dark': { colorScheme: 'dark', viewport: { width: 1280, height: 800 } },
  'phone light': { colorScheme: 'light', viewport: { width: 390, height: 844 } },
  'phone dark': { colorScheme: 'dark', viewport: { width: 390, height: 844 } },
};

/** Grades the page as it is now in every look (theme and size switched in place). */
async function expectNoViolations(page: Page, state: string): Promise<void> {
  for (const [look, { colorScheme, viewport }] of Object.entries(LOOKS)) {
    await page.setViewportSize(viewport);
    await page.emulateMedia({ colorScheme });
    // Two frames for whatever the page does on a resize, then the colour transitions the switch
    // started (hover styles) jump to their end, so the colours measured are the final ones.
    // (A fixed 400 ms wait did the same: 16 s of the file's 58.)
    await page.evaluate(
      () =>
        new Promise<void>((done) =>
          requestAnimationFrame(() =>
            requestAnimationFrame(() => {
              for (const animation of document.getAnimations()) {
                if (animation instanceof CSSTransition) animation.finish();
              }
              done();
            }),
          ),
        ),
    );
    const results = await new AxeBuilder({ page }).analyze();
    const found = results.violations.map(
      (v) =>
        `${v.id} (${v.impact}): ${v.help}\n` +
        v.nodes.map((n) => `    ${n.target.join(' ')}: ${n.failureSummary?.replace(/\n/g, ' ')}`).join('\n'),
    );
    expect(found, `axe violations on ${state}, ${look}`).toEqual([]);
  }
}

{
  const look = 'desktop light';
  test('every visitor page passes axe, in both themes, on desktop and phone', async ({ browser, server }) => {
    const page = await person(browser, server, LOOKS[look]);
    await page.goto('/');
    await expect(page.getByRole('button', { name: 'Create room' })).toBeEnabled();
    await expectNoViolations(page, `home`);

    // A room before joining, with recent messages to preview.
    const writer = await person(browser, server);
    const path = await createRoom(writer, 'Graded room', 2, false);
    await join(writer, path, 'writer');
    await say(writer, 'a first message, with a link https://example.com');
    await say(writer, 'and a second one right after');
    // `say` returns once the text is sent, not once the server has it: the page to grade shows
    // what the server has when it is asked for.
    const url = new URL(path, writer.url()).href;
    await expect.poll(async () => (await writer.request.get(url)).text()).toContain('and a second one right after');
    await page.goto(path);
    await expect(page.getByText('a first message')).toBeVisible();
    await expect(page.getByRole('button', { name: 'Join' })).toBeEnabled();
    await expectNoViolations(page, `room before joining`);

    // Joined, with messages, a mention, a notice and someone typing.
    await join(page, path, 'grader');
    await say(writer, '@grader welcome');
    await say(page, 'thanks!');
    await writer.getByRole('textbox', { name: 'Message' }).pressSequentially('typing');
    await expect(page.locator('[data-typing]')).toHaveText('writer is typing…');
    await expectNoViolations(page, `room with messages`);

    // A one-way room: the receipt in place of your own message.
    const host = await person(browser, server);
    const oneWay = await createRoom(host, 'Graded one-way', 10, true);
    await join(page, oneWay, 'grader');
    await say(page, 'unseen');
    await expect(page.getByText('Sent', { exact: true })).toBeVisible();
    await expectNoViolations(page, `one-way room`);

    // A full room's refusal.
    const third = await person(browser, server);
    await join(third, path, 'third');
    await page.goto(path);
    await page.getByLabel('Nickname').fill('latecomer');
    await page.getByRole('button', { name: 'Join' }).click();
    await expect(page.getByRole('alert').filter({ hasText: 'full' })).toBeVisible();
    await expectNoViolations(page, `full room refusal`);

    // No such room.
    await page.goto('/r/nowhere-zzzzz');
    await expectNoViolations(page, `no such room`);
  });

  test('the moderator pages and the ban notice pass axe, in both themes, on desktop and phone', async ({ browser, server }) => {
    const visitor = await person(browser, server, LOOKS[look]);
    await visitor.goto('/mod');
    await expect(visitor.getByLabel('Moderator token')).toBeVisible();
    await expectNoViolations(visitor, `moderator sign-in`);

    const member = await person(browser, server);
    await join(member, '/r/lobby', 'spammer');
    await say(member, 'buy now');
    const mod = await moderator(browser, server, LOOKS[look]);
    await expect(mod.getByRole('row', { name: /spammer/ })).toBeVisible();
    await expectNoViolations(mod, `moderator console`);

    const row = mod.getByRole('row', { name: /spammer/ });
    await row.getByRole('button', { name: 'Ban' }).click();
    await expectNoViolations(mod, `ban dialog`);
    // Escape puts the dialog away; it opens again.
    await mod.keyboard.press('Escape');
    await expect(mod.getByRole('dialog')).toHaveCount(0);
    await row.getByRole('button', { name: 'Ban' }).click();
    await mod.getByLabel('Reason').fill('Spam');
    await mod.getByRole('button', { name: 'Confirm ban' }).click();
    await expect(mod.getByText(/^Banned until /)).toBeVisible();

    await visitor.goto('/r/lobby');
    await expect(visitor.getByText(/You are banned until/)).toBeVisible();
    await expectNoViolations(visitor, `ban notice`);
  });
}
