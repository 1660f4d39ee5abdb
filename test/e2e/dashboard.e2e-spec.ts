import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Redis from 'ioredis';
import { Client } from 'pg';
import type { Browser, Page } from 'playwright-core';
import {
  CHROMIUM_PATH,
  chromiumAvailable,
  launchChromium,
} from '../support/browser';
import { testPorts } from '../support/ports';
import { DATABASE_URL, pgQuery } from '../support/postgres';
import { REDIS_URL } from '../support/redis-server';

const ROOT = join(__dirname, '../..');
const SAMPLE_MAIN = join(ROOT, 'dist-sample/sample/cron/main.js');
/** Written by the Express run; copied to docs/ with UPDATE_SCREENSHOT=1. */
const SCREENSHOT = join(tmpdir(), `pw-dashboard-${process.pid}.png`);
const DOCS_SCREENSHOT = join(ROOT, 'docs/dashboard.png');

// A first, short run over 1,000 users (the range holding user 50 always
// fails, so it leaves a dead letter and a failed run in the history); then
// 59,000 more users for the run the test watches: ranges of 200, 2 workers,
// 200 ms a range, about 30 s of work, longer than the test needs.
const FIRST_USERS = 1_000;
const USERS = 60_000;
const POISON = 50;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value that is not `undefined`/`false`; fails with `what()` after `ms`. */
async function until<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  what: () => string,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out: ${what()}`);
    await sleep(100);
  }
}

interface SampleApp {
  child: ChildProcess;
  url: string;
  output(): string;
  stop(): Promise<void>;
}

/** The compiled HTTP sample (`dist-sample/sample/cron/main.js`) as a real primary; resolves once it listens. */
async function startSample(
  port: number,
  env: Record<string, string>,
): Promise<SampleApp> {
  const child = spawn(process.execPath, [SAMPLE_MAIN], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const closed = new Promise<void>((resolve) =>
    child.once('close', () => resolve()),
  );
  const app: SampleApp = {
    child,
    url: `http://127.0.0.1:${port}`,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM'); // the sample stops its run and its workers gracefully
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await closed;
      clearTimeout(timer);
    },
  };
  await until(
    () => {
      if (child.exitCode !== null)
        throw new Error(`the sample exited:\n${out.slice(-3000)}`);
      return /Listening on http/.test(out);
    },
    () => `the sample did not listen:\n${out.slice(-3000)}`,
    30_000,
  );
  return app;
}

/** A database of the test's own, so the sample's fixed table name `users` clashes with nothing. */
async function createDatabase(): Promise<{ name: string; url: string }> {
  const name = `pw_dashboard_${randomBytes(4).toString('hex')}`;
  await pgQuery(`CREATE DATABASE ${name}`);
  const url = new URL(DATABASE_URL);
  url.pathname = `/${name}`;
  return { name, url: url.toString() };
}

async function deleteRedisKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(
        cursor,
        'MATCH',
        `*${prefix}*`,
        'COUNT',
        1000,
      );
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    if (keys.length) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

/** The number in a figure of the page (`12,300 of 60,000` → 12300). */
async function figure(page: Page, name: string): Promise<number> {
  const text = await page
    .locator(`section[data-job="users"] [data-figure="${name}"]`)
    .textContent();
  return Number((text ?? '').replace(/,/g, '').match(/\d+(\.\d+)?/)?.[0]);
}

const state = (page: Page) =>
  page.locator('section[data-job="users"] [data-figure="State"]').textContent();

const progress = async (page: Page): Promise<number> =>
  Number(
    await page
      .locator('section[data-job="users"] [role="progressbar"]')
      .getAttribute('aria-valuenow'),
  );

const hasChromium = chromiumAvailable();
if (!hasChromium)
  console.warn(
    `dashboard (e2e) skipped: no Chromium at ${CHROMIUM_PATH}. Install it (apt-get install chromium) or set CHROMIUM_PATH; .ci/run installs it.`,
  );
const describeIfChromium = hasChromium ? describe : describe.skip;

/**
 * The dashboard of the HTTP sample (`sample/cron`), in a real browser: real
 * cluster workers, PostgreSQL, Redis, on Express and on Fastify.
 */
describeIfChromium('dashboard in the HTTP sample, in Chromium (e2e)', () => {
  let browser: Browser;

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist/dashboard/index.js')))
      throw new Error(
        'dist/dashboard is missing: run npm run build first (npm test does); the sample imports the built package.',
      );
    // npm run build:sample: the sample as its users run it, against dist/.
    execFileSync(
      process.execPath,
      [
        require.resolve('typescript/bin/tsc'),
        '-p',
        join(ROOT, 'sample/tsconfig.app.json'),
      ],
      { cwd: ROOT, stdio: 'inherit' },
    );
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
  });

  describe.each(['express', 'fastify'] as const)('on %s', (http) => {
    const prefix = `pw-dashboard-${http}-${randomBytes(4).toString('hex')}`;
    const port = testPorts(2);
    let db: { name: string; url: string };
    let pg: Client;
    let app: SampleApp;
    let readOnly: SampleApp | undefined;
    let page: Page;

    /** Visits of the handler so far (`processed` counts them per row). */
    const handled = async (): Promise<number> =>
      Number(
        (
          await pg.query<{ n: string | null }>(
            'SELECT SUM(processed) AS n FROM users',
          )
        ).rows[0].n ?? 0,
      );

    beforeAll(async () => {
      db = await createDatabase();
      pg = new Client({ connectionString: db.url });
      await pg.connect();
      const env = {
        SAMPLE_HTTP: http,
        DATABASE_URL: db.url,
        REDIS_URL,
        SAMPLE_STORAGE_KEY: prefix,
        SAMPLE_USERS: String(FIRST_USERS),
        SAMPLE_WORKERS: '2',
        SAMPLE_RANGE_SIZE: '200',
        SAMPLE_DELAY_MS: '200',
        SAMPLE_FAIL_IDS: String(POISON),
        // Runs start from POST /run only: the cron waits for January 1st.
        CRON: '0 0 0 1 1 *',
        LOG_LEVEL: 'info',
      };
      app = await startSample(port, env);
      const status = async () =>
        (await (await fetch(`${app.url}/status`)).json()) as {
          state: string;
        };
      expect((await fetch(`${app.url}/run`, { method: 'POST' })).status).toBe(
        202,
      );
      await until(
        async () => ['completed', 'failed'].includes((await status()).state),
        () => `the first run did not end:\n${app.output().slice(-3000)}`,
        30_000,
      );
      const added = await fetch(
        `${app.url}/users?count=${USERS - FIRST_USERS}`,
        { method: 'POST' },
      );
      expect(await added.json()).toEqual({
        added: USERS - FIRST_USERS,
        total: USERS,
      });
      // A second instance on the same store and table, with the controls off.
      readOnly = await startSample(port + 1, {
        ...env,
        SAMPLE_DASHBOARD_CONTROLS: '0',
      });
      page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    }, 60_000);

    afterAll(async () => {
      await page?.close();
      await Promise.all([app?.stop(), readOnly?.stop()]);
      await pg?.end();
      if (db) await pgQuery(`DROP DATABASE IF EXISTS ${db.name} WITH (FORCE)`);
      await deleteRedisKeys(prefix);
    }, 30_000);

    it('starts a run with params from the page and shows it progressing without a reload', async () => {
      await page.goto(`${app.url}/jobs`);
      const order = () =>
        page
          .locator('main > section.job')
          .evaluateAll((s) => s.map((e) => e.getAttribute('data-job')));
      // Neither job runs yet (users ended, digest never ran): by name.
      expect(await order()).toEqual(['digest', 'users']);
      const section = page.locator('section[data-job="users"]');
      await section
        .locator('textarea[name="params"]')
        .fill('{"note": "from the page"}');
      await section.locator('button[data-action="start"]').click();
      const started = await until(
        async () => {
          const text =
            (await section.locator('.outcome[role="status"]').textContent()) ??
            '';
          return (
            /^Started run [0-9a-f]{8} of "users" on this host with params \{"note":"from the page"\}\.$/.test(
              text,
            ) && text
          );
        },
        () => `no outcome for start:\n${app.output().slice(-2000)}`,
        10_000,
      );
      // The form goes away while the run is active; the buttons that fit a running job come.
      await until(
        async () =>
          (await section.locator('form[data-start]').isHidden()) &&
          (await section.locator('button[data-action="pause"]').count()) === 1,
        () => 'the controls did not follow the running state',
      );
      expect(await page.title()).toBe('nestjs-parallel-worker sample');
      // Set once: a reload would lose it.
      await page.evaluate(() => ((globalThis as any).__loadedOnce = true));
      // The script polls live.json and says so.
      await until(
        async () =>
          /^Updated /.test(
            (await page.locator('[data-live-note]').textContent()) ?? '',
          ),
        () => 'the page never updated itself',
      );
      await until(
        async () => (await state(page)) === 'running',
        () => `state ${app.output().slice(-2000)}`,
      );
      const first = { ids: await figure(page, 'Ids done') };
      const firstPercent = await progress(page);
      const second = await until(
        async () => {
          const ids = await figure(page, 'Ids done');
          return ids > first.ids && ids;
        },
        () => `Ids done stayed at ${first.ids}`,
        10_000,
      );
      const secondPercent = await until(
        async () => {
          const p = await progress(page);
          return p > firstPercent && p;
        },
        () => `aria-valuenow stayed at ${firstPercent}`,
        10_000,
      );
      expect(await page.evaluate(() => (globalThis as any).__loadedOnce)).toBe(
        true,
      );
      expect(await figure(page, 'Ids done')).toBeLessThan(USERS);
      // The running job moved to the top, without a reload: its state and
      // progress are visible at 1280x900 without scrolling.
      let seen: unknown[] = [];
      await until(
        async () => (seen = await order()).join() === 'users,digest',
        () => `the sections stayed in the order ${seen.join(', ')}`,
        5_000,
      );
      expect(await page.evaluate(() => (globalThis as any).__loadedOnce)).toBe(
        true,
      );
      const figureBox = await section
        .locator('[data-figure="Ids done"]')
        .boundingBox();
      expect(figureBox).not.toBeNull();
      expect(figureBox!.y + figureBox!.height).toBeLessThanOrEqual(900);
      expect(await page.evaluate(() => (globalThis as any).scrollY)).toBe(0);
      // The rate chart is drawn from the page's own polls.
      await until(
        async () =>
          (await section.locator('svg[data-chart="rate"]').count()) === 1,
        () => 'no rate chart',
        10_000,
      );
      console.log(
        `${http}: ${started} Ids done ${first.ids} → ${second}, progress ${firstPercent}% → ${secondPercent}%, no reload`,
      );
    }, 40_000);

    it('Pause stops the workers writing; Resume starts them again', async () => {
      await page.click('section[data-job="users"] button[data-action="pause"]');
      const outcome = page.locator(
        'section[data-job="users"] .outcome[role="status"]',
      );
      await until(
        async () => /^Paused "users"/.test((await outcome.textContent()) ?? ''),
        () => 'no outcome for pause',
        5_000,
      );
      const pausedAt = Date.now();
      // In-flight ranges finish; then the rows stay as they are for 2 s.
      let last = await handled();
      let since = Date.now();
      const stable = await until(
        async () => {
          const now = await handled();
          if (now !== last) [last, since] = [now, Date.now()];
          return Date.now() - since >= 2_000 && now;
        },
        () => `the rows kept changing after the pause (${last})`,
        15_000,
      );
      expect(await state(page)).toBe('paused');
      const drained = Date.now() - pausedAt - 2_000;

      await page.click(
        'section[data-job="users"] button[data-action="resume"]',
      );
      await until(
        async () =>
          /^Resumed "users"/.test((await outcome.textContent()) ?? ''),
        () => 'no outcome for resume',
        5_000,
      );
      const resumed = await until(
        async () => {
          const now = await handled();
          return now > stable && now;
        },
        () => `the rows stayed at ${stable} after resume`,
        10_000,
      );
      await until(
        async () => (await state(page)) === 'running',
        () => 'the page never showed running again',
        5_000,
      );
      console.log(
        `${http}: paused at ${stable} handled (leases drained in ${drained} ms, then 2 s unchanged); resumed: ${resumed}`,
      );
    }, 40_000);

    it('Retry on a dead letter hands that range to the handler again', async () => {
      const poisonError = `User ${POISON} cannot be processed (SAMPLE_FAIL_IDS)`;
      const dead = await until(
        async () => {
          const n = await figure(page, 'Dead');
          return n > 0 && n;
        },
        () => 'no dead letter showed up',
        15_000,
      );
      const letters = page.locator(
        'section[data-job="users"] [data-live="dead"]',
      );
      expect(await letters.textContent()).toContain(poisonError);

      if (http === 'express') {
        // Mid-run, for the README: a third of the way or so.
        await until(
          async () => (await progress(page)) >= 30,
          () => 'the run did not get to 30%',
          20_000,
        );
        await page.screenshot({ path: SCREENSHOT, fullPage: true });
        if (process.env.UPDATE_SCREENSHOT === '1') {
          mkdirSync(dirname(DOCS_SCREENSHOT), { recursive: true });
          copyFileSync(SCREENSHOT, DOCS_SCREENSHOT);
        }
      }

      const attempts = () => app.output().split(poisonError).length - 1;
      const before = attempts();
      // Retry that one dead letter (its own button), not all of them.
      await page.click(
        'section[data-job="users"] button[data-action="retry-letter"]',
      );
      const outcome = page.locator(
        'section[data-job="users"] .outcome[role="status"]',
      );
      const said = await until(
        async () => {
          const text = (await outcome.textContent()) ?? '';
          return /out again now\.$/.test(text) && text;
        },
        () => 'no outcome for retry-dead',
        5_000,
      );
      // The page's refresh right after the control shows the letter gone
      // (it takes three failing attempts, over 2 s, to come back).
      await until(
        async () => (await figure(page, 'Dead')) < dead,
        () => `Dead stayed at ${dead}`,
        3_000,
      );
      // The handler gets the range again (and, poisoned, fails again).
      await until(
        () => attempts() > before,
        () =>
          `the handler never got the range again:\n${app.output().slice(-2000)}`,
        10_000,
      );
      console.log(
        `${http}: ${said} Dead ${dead} → fewer; handler failed again`,
      );
    }, 40_000);

    it('with controls off: no buttons, and a forged POST gets 403', async () => {
      const other = await browser.newPage();
      try {
        await other.goto(`${readOnly!.url}/jobs`);
        const section = other.locator('section[data-job="users"]');
        expect(await section.count()).toBe(1);
        // The same run, seen from the read-only instance.
        expect(
          await section.locator('[data-figure="Ids done"]').textContent(),
        ).toMatch(/^[\d,]+ of 60,000$/);
        expect(await other.locator('button').count()).toBe(0);
        expect(await other.locator('form').count()).toBe(0);
        expect(await other.locator('header').textContent()).toContain(
          'Read-only.',
        );
      } finally {
        await other.close();
      }

      const forged = await fetch(`${readOnly!.url}/jobs/users/pause`, {
        method: 'POST',
        headers: { 'x-parallel-worker-dashboard': '1' },
      });
      expect(forged.status).toBe(403);
      // With the controls on, a POST without the page's header, or from another site, is refused too.
      const noHeader = await fetch(`${app.url}/jobs/users/pause`, {
        method: 'POST',
      });
      expect(noHeader.status).toBe(403);
      const crossSite = await fetch(`${app.url}/jobs/users/pause`, {
        method: 'POST',
        headers: {
          'x-parallel-worker-dashboard': '1',
          origin: 'https://evil.example',
        },
      });
      expect(crossSite.status).toBe(403);
      // None of them paused the run.
      const status = (await (await fetch(`${app.url}/status`)).json()) as {
        state: string;
      };
      expect(status.state).toBe('running');
    }, 20_000);

    it('starts the partitioned job: refused without its params, then its partition bars fill', async () => {
      const digest = page.locator('section[data-job="digest"]');
      const outcome = digest.locator('.outcome[role="status"]');
      const params = digest.locator('textarea[name="params"]');
      const queued = async () =>
        (
          await pg.query<{ n: string; subjects: string[] | null }>(
            'SELECT COUNT(*) AS n, ARRAY_AGG(DISTINCT subject) AS subjects FROM digests',
          )
        ).rows[0];
      // The job checks its params before anything starts.
      await params.fill('{}');
      await digest.locator('button[data-action="start"]').click();
      const refused = await until(
        async () => {
          const text = (await outcome.textContent()) ?? '';
          return /a digest needs a subject/.test(text) && text;
        },
        () => 'no refusal for a start without a subject',
        5_000,
      );
      expect(await outcome.getAttribute('class')).toContain('error');
      expect(await digest.locator('[data-figure="State"]').textContent()).toBe(
        'idle',
      );
      expect(await queued()).toEqual({ n: '0', subjects: null });

      await params.fill('{"subject": "Your week"}');
      await digest.locator('button[data-action="start"]').click();
      await until(
        async () =>
          /^Started run [0-9a-f]{8} of "digest" on this host with params \{"subject":"Your week"\}\.$/.test(
            (await outcome.textContent()) ?? '',
          ),
        () => `no outcome for the digest start:\n${app.output().slice(-2000)}`,
        10_000,
      );
      // Four partitions, each with its own bar, filling as the run goes.
      const rows = digest.locator('table.partitions tr[data-partition]');
      await until(
        async () => (await rows.count()) === 4,
        () => 'no four partitions on the page',
        10_000,
      );
      const labels = await rows
        .locator('[role="progressbar"]')
        .evaluateAll((bars) => bars.map((b) => b.getAttribute('aria-label')));
      expect(labels).toEqual(
        [1, 2, 3, 4].map((n) => `Partition ${n} of digest`),
      );
      const filled = async () =>
        (
          await rows
            .locator('[role="progressbar"][aria-valuenow]')
            .evaluateAll((bars) =>
              bars.map((b) => Number(b.getAttribute('aria-valuenow'))),
            )
        ).reduce((a, b) => a + b, 0);
      const before = await filled();
      const after = await until(
        async () => {
          const now = await filled();
          return now > before && now;
        },
        () => `the partition bars stayed at ${before} in all`,
        15_000,
      );
      const rowsQueued = await until(
        async () => {
          const q = await queued();
          return Number(q.n) > 0 && q;
        },
        () => 'nothing was queued',
        5_000,
      );
      expect(rowsQueued.subjects).toEqual(['Your week']);
      console.log(
        `${http}: ${refused} Then the partition bars went ${before} → ${after} (percent points in all); ${rowsQueued.n} digests queued`,
      );
    }, 40_000);
  });
});
