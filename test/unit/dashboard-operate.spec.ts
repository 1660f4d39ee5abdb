import {
  type CanActivate,
  type ExecutionContext,
  Injectable,
  type INestApplication,
} from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import Redis from 'ioredis';
import {
  type ID,
  type LoadContext,
  ParallelWorker,
  ParallelWorkerModule,
  type Range,
  RangeHandler,
  RangeLoader,
  RangePartitions,
  RangeTotal,
  RunRefusedError,
} from 'nestjs-parallel-worker';
import {
  DASHBOARD_HEADER,
  ParallelWorkerDashboardModule,
} from 'nestjs-parallel-worker/dashboard';

const PREFIX = `dashboard-operate-${process.pid}`;
let apps = 0;
let delayMs = 0;
let poison: number[] = [];

const upTo = (last: ID | null, limit: number, end: number): number[] => {
  const from = Number(last ?? 0) + 1;
  return Array.from(
    { length: Math.max(0, Math.min(limit, end - from + 1)) },
    (_, i) => from + i,
  );
};

/** `numbers`: 200 rows, a total, params checked by a function. */
@Injectable()
class Numbers {
  @RangeLoader('numbers', {
    params: (p: unknown) => {
      const { batch } = p as { batch?: unknown };
      if (batch !== undefined && typeof batch !== 'string')
        return 'batch must be a string';
      return true;
    },
  })
  next(lastId: ID | null, { limit }: LoadContext): number[] {
    return upTo(lastId, limit, 200);
  }

  @RangeTotal('numbers')
  total(): number {
    return 200;
  }

  @RangeHandler('numbers')
  async handle({ idsRange }: Range): Promise<void> {
    if (poison.some((id) => idsRange.includes(id))) {
      const error = new Error(`poison ${idsRange[0]}`);
      error.stack = `Error: poison ${idsRange[0]}\n    at connect (redis://app:st4ck-s3cret@10.0.0.9:6379)\n    at Numbers.handle`;
      throw error;
    }
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
  }
}

/** `parts`: 400 rows in 4 partitions, no total. */
@Injectable()
class Parts {
  @RangePartitions('parts', { count: 4 })
  bounds() {
    return { min: 1, max: 400 };
  }

  @RangeLoader('parts')
  next(lastId: ID | null, { limit, partition }: LoadContext): number[] {
    const end = Math.min(400, Number(partition?.upTo ?? 400));
    return upTo(lastId ?? partition?.after ?? null, limit, end);
  }

  @RangeHandler('parts')
  async handle(): Promise<void> {
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
  }
}

/** The app's auth: lets everyone in as alice. */
@Injectable()
class Alice implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    context.switchToHttp().getRequest<{ user?: unknown }>().user = {
      id: 7,
      name: 'alice',
    };
    return true;
  }
}

async function start(
  adapter: 'express' | 'fastify',
  controls = true,
): Promise<{ app: INestApplication; url: string; pw: ParallelWorker }> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      ParallelWorkerModule.forRoot({
        isGlobal: true,
        workers: 0,
        rangeSize: 10,
        maxAttempts: 1,
        maxDeadRatio: 1,
        logging: { enabled: false },
        storage: 'redis://127.0.0.1:6379',
        storageKey: `${PREFIX}-${++apps}`,
      }),
      ParallelWorkerDashboardModule.register({
        path: 'jobs',
        controls,
        guards: [Alice],
      }),
    ],
    providers: [Numbers, Parts],
  }).compile();
  const app =
    adapter === 'fastify'
      ? moduleRef.createNestApplication(new FastifyAdapter())
      : moduleRef.createNestApplication();
  await app.listen(0, '127.0.0.1');
  return {
    app,
    url: (await app.getUrl()).replace('[::1]', '127.0.0.1'),
    pw: app.get(ParallelWorker),
  };
}

afterAll(async () => {
  const redis = new Redis('redis://127.0.0.1:6379');
  const keys = await redis.keys(`{${PREFIX}-*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

beforeEach(() => {
  delayMs = 0;
  poison = [];
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The history record of run `runId`. A run's state turns completed in the
 * store before its workers are drained and its record is kept, so a record
 * is awaited by its run id, never taken as the newest once the state moved.
 */
async function recordOf(pw: ParallelWorker, job: string, runId: string) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const record = (await pw.history(job)).find((r) => r.runId === runId);
    if (record) return record;
    if (Date.now() > deadline)
      throw new Error(`no history record of run ${runId} of "${job}"`);
    await sleep(50);
  }
}

/** reset() once the run has ended on this host too: that comes a moment after its record is kept. */
async function resetWhenEnded(pw: ParallelWorker, job: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await pw.reset(job);
    } catch (e) {
      const stillHere =
        e instanceof RunRefusedError &&
        e.message.includes('is running on this host');
      if (!stillHere || Date.now() > deadline) throw e;
      await sleep(50);
    }
  }
}

/** The HTML of a job's section. */
const section = (html: string, job: string): string =>
  html.match(
    new RegExp(`<section[^>]*data-job="${job}"[\\s\\S]*?</section>`),
  )?.[0] ?? '';
/** The `data-action` of every control button of a job's section, in order. */
const buttons = (html: string, job: string): string[] =>
  [...section(html, job).matchAll(/data-action="([a-z-]+)"/g)].map((m) => m[1]);
const startHidden = (html: string, job: string): boolean =>
  new RegExp(`action="/jobs/${job}/start" data-start hidden>`).test(html);
const sectionsOrder = (html: string): string[] =>
  [...html.matchAll(/<section class="job" id="[^"]+" data-job="([^"]+)"/g)].map(
    (m) => m[1],
  );

describe.each(['express', 'fastify'] as const)(
  'dashboard controls on %s',
  (adapter) => {
    let app: INestApplication;
    let url: string;
    let pw: ParallelWorker;
    afterEach(async () => app?.close());

    const post = (
      path: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ) =>
      fetch(`${url}/jobs/${path}`, {
        method: 'POST',
        headers: {
          [DASHBOARD_HEADER]: '1',
          ...(body !== undefined && { 'content-type': 'application/json' }),
          ...headers,
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
    const page = async () => (await fetch(`${url}/jobs`)).text();

    it('starts a run with params from the page, behind the same checks; bad params and an active run are refused with the reason', async () => {
      ({ app, url, pw } = await start(adapter));
      // The same checks as every control: the header, the same origin.
      expect(
        (
          await post(
            'numbers/start',
            { params: '' },
            { origin: 'https://evil.example' },
          )
        ).status,
      ).toBe(403);
      expect(
        (await fetch(`${url}/jobs/numbers/start`, { method: 'POST' })).status,
      ).toBe(403);
      const refused = async (params: string, status: number) => {
        const res = await post('numbers/start', { params });
        expect(res.status).toBe(status);
        return ((await res.json()) as { message: string }).message;
      };
      expect(await refused('{"batch": 7}', 400)).toBe(
        'Job "numbers" was not started: its params are not valid (Numbers.next @RangeLoader params): batch must be a string.',
      );
      expect(await refused('[1, 2]', 400)).toBe(
        'Job "numbers" was not started: params must be a plain object of JSON values, got [ 1, 2 ].',
      );
      expect(await refused('{batch: ', 400)).toMatch(
        /^Job "numbers" was not started: the params are not JSON \(/,
      );
      expect((await pw.status('numbers')).state).toBe('idle');

      delayMs = 30;
      const res = await post('numbers/start', { params: ' {"batch": "b-1"} ' });
      expect(res.status).toBe(200);
      const { message } = (await res.json()) as { message: string };
      expect(message).toMatch(
        /^Started run [0-9a-f]{8} of "numbers" on this host with params \{"batch":"b-1"\}\.$/,
      );
      // Answered once the store started it: running now, the request did not wait for the end.
      const running = await pw.status('numbers');
      expect(running.state).toBe('running');
      expect(message).toContain(running.runId!.slice(0, 8));
      expect(running.ids.done).toBeLessThan(200);
      expect(await refused('', 409)).toBe(
        `Job "numbers" was not started: its run ${running.runId!.slice(0, 8)} is running; wait for it, or cancel it first.`,
      );
      const html = await page();
      expect(startHidden(html, 'numbers')).toBe(true);
      expect(await recordOf(pw, 'numbers', running.runId!)).toMatchObject({
        status: 'completed',
        params: { batch: 'b-1' },
        startedBy: 'dashboard (alice)',
      });
      // Empty params: a run with none (over the rows again: a run with nothing to do leaves no record).
      await resetWhenEnded(pw, 'numbers');
      expect((await post('numbers/start', { params: '  ' })).status).toBe(200);
      const second = await pw.status('numbers');
      expect(second.runId).not.toBe(running.runId);
      expect((await recordOf(pw, 'numbers', second.runId!)).params).toBeNull();
    }, 30_000);

    it('retries one dead letter by its run and first id; one retried already answers 409 and retries no other', async () => {
      ({ app, url, pw } = await start(adapter));
      poison = [15, 55];
      await pw.run('numbers');
      const html = await page();
      const letters = [
        ...html.matchAll(/data-action="retry-letter" data-letter="([^"]+)"/g),
      ].map(
        (m) =>
          JSON.parse(m[1].replace(/&quot;/g, '"')) as {
            runId: string;
            firstId: number;
          },
      );
      const { runId } = (await pw.history('numbers'))[0];
      expect(letters).toEqual([
        { runId, firstId: 11 },
        { runId, firstId: 51 },
      ]);
      // Each letter's stack, collapsed and masked.
      expect(html).toContain(
        '<details class="stack"><summary>Stack trace</summary><pre>Error: poison 11\n    at connect (redis://***@10.0.0.9:6379)',
      );
      expect(html).not.toContain('st4ck-s3cret');
      expect(
        (
          await post(
            'numbers/retry-dead',
            { letter: letters[1] },
            { 'sec-fetch-site': 'cross-site' },
          )
        ).status,
      ).toBe(403);
      const one = await post('numbers/retry-dead', { letter: letters[1] });
      expect(one.status).toBe(200);
      expect(((await one.json()) as { message: string }).message).toBe(
        'The dead letter of "numbers" starting at id 51 goes out again in the next run.',
      );
      const again = await post('numbers/retry-dead', { letter: letters[1] });
      expect(again.status).toBe(409);
      expect(((await again.json()) as { message: string }).message).toBe(
        `That dead letter of "numbers" (run ${runId.slice(0, 8)}, first id 51) is not in the list any more: retried or reset already. Nothing was retried.`,
      );
      expect(
        (await pw.deadLetters('numbers')).map((d) => d.range.ids[0]),
      ).toEqual([11]);
      expect(
        (await post('numbers/retry-dead', { letter: { runId: 7 } })).status,
      ).toBe(400);
    }, 30_000);

    it('shows the buttons that fit each state, the running job first, a chart of its rate and a bar per partition', async () => {
      ({ app, url, pw } = await start(adapter));
      let html = await page();
      // Idle: start a run or reset; nothing to pause, resume, cancel or retry.
      expect(buttons(html, 'numbers')).toEqual(['reset', 'start']);
      expect(startHidden(html, 'numbers')).toBe(false);
      // A job with a @RangeTotal is never told to add one.
      expect(section(html, 'numbers')).not.toContain(
        'add a <code>@RangeTotal</code>',
      );
      expect(section(html, 'numbers')).toContain(
        'The total is counted when a run starts',
      );
      expect(sectionsOrder(html)).toEqual(['numbers', 'parts']);

      delayMs = 60;
      const run = pw.run('parts');
      while ((await pw.status('parts')).state !== 'running') await sleep(20);
      await sleep(1100);
      html = await page();
      expect(sectionsOrder(html)).toEqual(['parts', 'numbers']);
      expect(buttons(html, 'parts')).toEqual(['pause', 'cancel', 'start']);
      expect(startHidden(html, 'parts')).toBe(true);
      await sleep(1100);
      const live = (await (await fetch(`${url}/jobs/live.json`)).json()) as {
        order: string[];
        jobs: Record<
          string,
          { stats: string; buttons: string; canStart: boolean }
        >;
      };
      expect(live.order).toEqual(['parts', 'numbers']);
      expect(live.jobs.parts.canStart).toBe(false);
      expect(live.jobs.numbers.canStart).toBe(true);
      const stats = live.jobs.parts.stats;
      expect(stats).toMatch(
        /<svg [^>]*role="img" aria-label="Rate of parts over [^"]+: now [\d,]+ ids\/s, peak [\d,]+ ids\/s\." data-chart="rate">/,
      );
      expect(stats.match(/aria-label="Partition \d of parts"/g)).toEqual([
        'aria-label="Partition 1 of parts"',
        'aria-label="Partition 2 of parts"',
        'aria-label="Partition 3 of parts"',
        'aria-label="Partition 4 of parts"',
      ]);
      // No @RangeTotal: the hint is for this job.
      expect(stats).toContain('add a <code>@RangeTotal</code>');

      await pw.pause('parts');
      html = await page();
      expect(buttons(html, 'parts')).toEqual(['resume', 'cancel', 'start']);
      await pw.cancel('parts');
      await run;
      poison = [15];
      await pw.run('numbers');
      html = await page();
      expect(buttons(html, 'numbers')).toEqual([
        'retry-dead',
        'reset',
        'start',
        'retry-letter',
      ]);
      // Ended: its duration and average rate, no decaying rate or ETA.
      const figures = [
        ...html.matchAll(/<dt>([^<]+)<\/dt><dd data-figure/g),
      ].map((m) => m[1]);
      expect(figures).toContain('Took');
      expect(figures).toContain('Average rate');
      expect(figures).not.toContain('Rate');
      expect(figures).not.toContain('ETA');
      expect(html).toMatch(
        /Average rate<\/dt><dd data-figure="Average rate">[\d,]+ ids\/s/,
      );
    }, 30_000);

    it('refuses every control with the controls off, the start form included', async () => {
      ({ app, url, pw } = await start(adapter, false));
      const html = await page();
      expect(html).not.toContain('<form');
      expect((await post('numbers/start', { params: '' })).status).toBe(403);
      expect((await pw.status('numbers')).state).toBe('idle');
    });
  },
);

describe('dashboard: a failed run', () => {
  it('shows the stack of the error that failed it', async () => {
    const { app, url, pw } = await start('express');
    try {
      const loader = Numbers.prototype.next;
      Numbers.prototype.next = () => {
        throw new Error('the loader broke');
      };
      try {
        await expect(pw.run('numbers')).rejects.toThrow('the loader broke');
      } finally {
        Numbers.prototype.next = loader;
      }
      const html = await (await fetch(`${url}/jobs`)).text();
      expect(html).toMatch(
        /<tr class="run-error"><td><\/td><td colspan="7">[^<]*the loader broke[^<]*<details class="stack"><summary>Stack trace<\/summary><pre>Error: the loader broke\n {4}at /,
      );
    } finally {
      await app.close();
    }
  }, 30_000);
});
