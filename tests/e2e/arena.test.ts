/**
 * The arena page in headless Chromium, against the real API, workers,
 * Ollama and FerretDB: sign in, start a room from agents and watch its
 * tokens arrive, post into it, lose the network for 3 s mid-turn (the
 * transcript on screen then equals the stored one), cancel a chat
 * mid-stream, reload and still see the room, fork it and stop the fork.
 * With PARLEY_SCREENSHOT=<path> it also saves the screenshot the README
 * shows (docs/img/arena.png).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { createClient, type ParleyClient } from '../../sdk/index.ts';
import { ensureWebBuild } from '../../scripts/web-build.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';
import { launchChromium } from './browser.ts';

let stack: Stack;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let context: BrowserContext;
let page: Page;
let user: TestUser;
let client: ParleyClient;
let roomId: string;

const turnsOnScreen = () =>
  page.$$eval('[data-testid=turn]', (els) =>
    els.map((el) => ({ turn: Number(el.getAttribute('data-turn')), text: el.querySelector('[data-testid=turn-text]')?.textContent ?? '' })),
  );

beforeAll(async () => {
  await ensureWebBuild();
  stack = await startStack();
  user = await stack.user('member');
  client = createClient({ baseUrl: stack.base, auth: user.token });
  const persona = 'You argue briefly and concretely. Two or three sentences.';
  for (const name of ['Ada', 'Brook']) await client.agents.create({ name, persona: `${name}. ${persona}`, params: { num_predict: 32, temperature: 0.7 } });
  browser = await launchChromium();
  context = browser.context;
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(60_000);
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('the arena page', () => {
  it('signs in', async () => {
    await page.goto(stack.base);
    await page.fill('[data-testid=signin] input[name=username]', user.username);
    await page.fill('[data-testid=signin] input[name=password]', user.password);
    await page.click('[data-testid=signin] button');
    await expect.poll(() => page.textContent('[data-testid=me]')).toBe(user.username);
  });

  it('starts a room from agents, shows its tokens as they arrive, and posts into it', async () => {
    const form = page.locator('[data-testid=new-room]');
    await form.locator('input[name=topic]').fill('Should cities ban cars from their centres?');
    await expect.poll(() => form.locator('input[name=agent]').count()).toBe(2);
    for (const box of await form.locator('input[name=agent]').all()) await box.check();
    await form.locator('input[name=maxTurns]').fill('2');
    await form.locator('button').click();
    await page.waitForURL(/#\/rooms\//);
    roomId = /#\/rooms\/([0-9a-f-]{36})/.exec(page.url())![1]!;
    // Tokens of the first turn, on screen while the speaker is still speaking.
    await page.waitForSelector('[data-testid=turn][data-status=speaking] [data-testid=turn-text]:not(:empty)', { timeout: 280_000 });
    expect((await client.discussions.get(roomId)).status).toBe('running');
    // Join in: the message shows in the room's timeline for everyone.
    await page.fill('.post input[name=text]', 'Think of the delivery drivers!');
    await page.click('.post button');
    await page.waitForSelector('[data-testid=message]');
  }, 300_000);

  it('goes offline for 3 s mid-turn, comes back, and ends with the stored transcript on screen', async () => {
    // Still mid-turn: the previous test ended on the first tokens of turn 1.
    await context.setOffline(true);
    await page.waitForTimeout(3000);
    await context.setOffline(false);
    await page.waitForSelector('[data-testid=room][data-status=finished]', { timeout: 280_000 });
    const stored = await client.discussions.transcript(roomId);
    expect(stored.turns.length).toBe(2);
    expect(await turnsOnScreen()).toEqual(stored.turns.map((t) => ({ turn: t.turn, text: t.text })));
    expect(await page.$$eval('[data-testid=message] .text', (els) => els.map((e) => e.textContent))).toEqual(stored.messages.map((m) => m.text));
    // The page dropped its stream when it went offline and resumed it after the last event it had.
    expect(Number(await page.getAttribute('[data-testid=room]', 'data-reconnects'))).toBeGreaterThanOrEqual(1);
    // Whatever failed while offline is no longer shown as an error.
    await expect.poll(() => page.locator('[data-testid=room] .error').count()).toBe(0);
  }, 300_000);

  it('cancels a chat mid-stream', async () => {
    const chat = page.locator('[data-testid=chat]');
    await chat.locator('textarea[name=prompt]').fill('Tell me a long story about a lighthouse keeper.');
    await chat.locator('input[name=numPredict]').fill('600');
    await chat.locator('button', { hasText: 'Send' }).click();
    await page.waitForSelector('[data-testid=chat-text]:not(:empty)', { timeout: 240_000 });
    await page.click('[data-testid=cancel-chat]');
    await page.waitForSelector('[data-testid=chat][data-state=cancelled]');
    const job = await client.jobs.get((await chat.getAttribute('data-job'))!);
    expect(job.state).toBe('cancelled');
    expect(job.error?.code).toBe('CANCELLED');
    // The model stopped: far fewer tokens than it was allowed.
    expect(job.usage!.completionTokens).toBeLessThan(600);
    if (process.env.PARLEY_SCREENSHOT) await page.screenshot({ path: process.env.PARLEY_SCREENSHOT });
  }, 300_000);

  it('reloads and still shows the room', async () => {
    await page.reload();
    await expect.poll(() => page.textContent('[data-testid=me]')).toBe(user.username);
    await page.waitForSelector('[data-testid=room][data-status=finished]');
    expect(await page.textContent('[data-testid=topic]')).toBe('Should cities ban cars from their centres?');
    const stored = await client.discussions.transcript(roomId);
    expect(await turnsOnScreen()).toEqual(stored.turns.map((t) => ({ turn: t.turn, text: t.text })));
  });

  it('forks the room from its last turn, then stops the fork', async () => {
    const parent = await turnsOnScreen();
    await page.click('button:has-text("Fork from turn 2")');
    await page.waitForURL((url) => !url.hash.includes(roomId));
    const forkId = /#\/rooms\/([0-9a-f-]{36})/.exec(page.url())![1]!;
    await page.waitForSelector('[data-testid=room][data-status=draft]');
    // The fork replays the parent's turns into its own stream.
    await expect.poll(turnsOnScreen).toEqual(parent);
    await page.click('.controls button:has-text("Stop")');
    await page.waitForSelector('[data-testid=room][data-status=stopped]');
    expect((await client.discussions.get(forkId)).lineage).toEqual({ parentId: roomId, forkTurn: 2 });
  });
});
