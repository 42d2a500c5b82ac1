import { test, expect, person, createRoom, join, say, log, members } from './burner';

test('in a one-way room the author gets a receipt, everyone else the message', async ({ browser, server }) => {
  const author = await person(browser, server);
  const reader = await person(browser, server);
  const path = await createRoom(author, 'Confessions', 10, true);
  await expect(author.getByText('This is a one-way room.')).toBeVisible();
  await join(author, path, 'author');
  await join(reader, path, 'reader');
  await expect(members(author).getByText('reader')).toBeVisible();

  await say(author, 'I never liked the office plant');
  await expect(log(reader).getByText('I never liked the office plant')).toBeVisible();
  await expect(log(author).getByText('Sent', { exact: true })).toBeVisible();
  await expect(log(author)).not.toContainText('office plant');

  // Everyone in a one-way room is an author: the reader's own words do not come back either.
  await say(reader, 'it knew');
  await expect(log(author).getByText('it knew')).toBeVisible();
  await expect(log(reader).getByText('Sent', { exact: true })).toBeVisible();
  await expect(log(reader)).not.toContainText('it knew');

  // Reloading the tab (same session) does not bring the author's words back.
  await author.reload();
  await join(author, path, 'author');
  await expect(log(author).getByText('it knew')).toBeVisible();
  await expect(log(author)).not.toContainText('office plant');
  // And what the author writes after the reload still reaches the others (and not them).
  await say(author, 'also, the plant is fake');
  await expect(log(reader).getByText('also, the plant is fake')).toBeVisible();
  await expect(log(author).getByText('Sent', { exact: true })).toHaveCount(1);
  await expect(log(author)).not.toContainText('plant is fake');
});
