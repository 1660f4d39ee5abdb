import {
  type CanActivate,
  type ExecutionContext,
  Injectable,
  type INestApplication,
  Module,
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
  RangeTotal,
} from 'nestjs-parallel-worker';
import {
  DASHBOARD_HEADER,
  type DashboardOptions,
  ParallelWorkerDashboardModule,
} from 'nestjs-parallel-worker/dashboard';
import { RedisStore } from '../../lib/store/redis.store';

const PREFIX = `dashboard-spec-${process.pid}`;
let apps = 0;
let rows = 200;
let delayMs = 0;
let poison: number[] = [];
/** Said after the poison message: a connection string, as a driver's error may quote it. */
let poisonNote = '';

@Injectable()
class Numbers {
  @RangeLoader('numbers')
  next(lastId: ID | null, { limit }: LoadContext): number[] {
    const from = Number(lastId ?? 0) + 1;
    return Array.from(
      { length: Math.max(0, Math.min(limit, rows - from + 1)) },
      (_, i) => from + i,
    );
  }

  @RangeTotal('numbers')
  total(): number {
    return rows;
  }

  @RangeHandler('numbers')
  async handle({ idsRange }: Range): Promise<void> {
    if (poison.some((id) => idsRange.includes(id)))
      throw new Error(`poison <b>${idsRange[0]}</b>${poisonNote}`);
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
  }
}

/** The app's auth: a provider of its own module, which the guard needs. */
@Injectable()
class Tokens {
  valid(header: string | undefined): boolean {
    return header === 'Bearer ops';
  }
}

@Module({ providers: [Tokens], exports: [Tokens] })
class AuthModule {}

@Injectable()
class NeedsToken implements CanActivate {
  constructor(private readonly tokens: Tokens) {}

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<{
      headers: Record<string, string>;
    }>();
    return this.tokens.valid(req.headers.authorization);
  }
}

async function start(
  adapter: 'express' | 'fastify',
  dashboard: DashboardOptions,
  prefix?: string,
  trustProxy = false,
): Promise<{ app: INestApplication; url: string; pw: ParallelWorker }> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      ParallelWorkerModule.forRoot({
        isGlobal: true,
        workers: 0,
        rangeSize: 10,
        maxAttempts: 1,
        // The dead-letter pages need a table whose every row is dead: the run goes on for them.
        maxDeadRatio: 1,
        logging: { enabled: false },
        storage: 'redis://:s3cret@127.0.0.1:6379',
        storageKey: `${PREFIX}-${++apps}`,
      }),
      ParallelWorkerDashboardModule.register(dashboard),
    ],
    providers: [Numbers],
  }).compile();
  const app =
    adapter === 'fastify'
      ? moduleRef.createNestApplication(new FastifyAdapter({ trustProxy }))
      : moduleRef.createNestApplication();
  if (adapter === 'express' && trustProxy)
    (
      app.getHttpAdapter().getInstance() as {
        set(key: string, value: unknown): void;
      }
    ).set('trust proxy', true);
  if (prefix) app.setGlobalPrefix(prefix);
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
  rows = 200;
  delayMs = 0;
  poison = [];
  poisonNote = '';
});

describe.each(['express', 'fastify'] as const)('dashboard on %s', (adapter) => {
  it('renders every job from the store, read-only by default: no control shown, a forged POST refused (403)', async () => {
    const { app, url, pw } = await start(adapter, { path: 'jobs' });
    poison = [15];
    await pw.run('numbers');
    const page = await fetch(`${url}/jobs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('<section class="job" id="job-numbers"');
    expect(html).toContain('aria-valuenow="95.0"');
    expect(html).toMatch(/Ids done<\/dt><dd[^>]*>190 of 200/);
    // The handler's error is escaped, never markup.
    expect(html).toContain('poison &lt;b&gt;11&lt;/b&gt;');
    expect(html).not.toContain('<button');
    expect(html).toContain('Read-only.');
    // No secrets: the store's URL (and its password) is never rendered.
    expect(html).not.toContain('s3cret');
    expect(html).not.toContain('6379');
    const forged = await fetch(`${url}/jobs/numbers/reset`, {
      method: 'POST',
      headers: { [DASHBOARD_HEADER]: '1' },
    });
    expect(forged.status).toBe(403);
    expect((await pw.status('numbers')).cursor).toBe(200);
    for (const asset of ['dashboard.css', 'dashboard.js']) {
      const res = await fetch(`${url}/jobs/${asset}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(
        asset.endsWith('css') ? /^text\/css/ : /^text\/javascript/,
      );
    }
    const live = (await (await fetch(`${url}/jobs/live.json`)).json()) as {
      jobs: Record<string, { stats: string; runs: string; dead: string }>;
    };
    expect(live.jobs.numbers.stats).toContain('190 of 200');
    expect(live.jobs.numbers.runs).toContain('completed');
    expect(live.jobs.numbers.dead).toContain('1 in all');
    await app.close();
  });

  it('with controls: pauses, resumes and resets through same-origin POSTs carrying the header; refuses cross-site ones', async () => {
    const { app, url, pw } = await start(adapter, {
      path: '/ops/jobs/',
      controls: true,
    });
    const html = await (await fetch(`${url}/ops/jobs`)).text();
    // Idle: nothing to pause; a run can be started, the cursor reset.
    expect(html).not.toContain('data-action="pause"');
    expect(html).toContain('<button type="submit" data-action="start">');
    expect(html).toContain('data-confirm="Job &quot;numbers&quot;: Reset');
    const post = (action: string, headers: Record<string, string> = {}) =>
      fetch(`${url}/ops/jobs/numbers/${action}`, {
        method: 'POST',
        headers: { [DASHBOARD_HEADER]: '1', ...headers },
      });
    // Without the header (a plain cross-site form), or from another origin: refused.
    expect(
      (await fetch(`${url}/ops/jobs/numbers/pause`, { method: 'POST' })).status,
    ).toBe(403);
    expect(
      (await post('pause', { origin: 'https://evil.example' })).status,
    ).toBe(403);
    expect(
      (await post('pause', { 'sec-fetch-site': 'cross-site' })).status,
    ).toBe(403);
    expect(
      (await post('pause', { 'sec-fetch-site': 'same-site', origin: url }))
        .status,
    ).toBe(403);
    // No run to pause: the refusal is shown, not a server error.
    const none = await post('pause');
    expect(none.status).toBe(409);
    expect(((await none.json()) as { message: string }).message).toBe(
      'Job "numbers" has no active run to pause.',
    );
    delayMs = 20;
    rows = 2000;
    const run = pw.run('numbers');
    await new Promise((r) => setTimeout(r, 100));
    // Behind a proxy that rewrites Host: the browser's Sec-Fetch-Site says the page is this app's.
    const paused = await post('pause', {
      origin: 'https://jobs.example.com',
      'sec-fetch-site': 'same-origin',
    });
    expect(paused.status).toBe(200);
    expect(await paused.json()).toEqual({
      ok: true,
      message:
        'Paused "numbers": every host stops handing out within a second.',
    });
    expect((await pw.status('numbers')).state).toBe('paused');
    expect((await post('resume')).status).toBe(200);
    expect((await post('cancel')).status).toBe(200);
    expect((await run).status).toBe('stopped');
    expect((await post('reset')).status).toBe(200);
    expect((await pw.status('numbers')).cursor).toBeNull();
    expect((await post('explode')).status).toBe(404);
    await app.close();
  });

  it('trusts X-Forwarded-Host only where the app trusts its proxy: a forged one from a direct client is refused', async () => {
    for (const trustProxy of [false, true]) {
      const { app, url, pw } = await start(
        adapter,
        { controls: true },
        undefined,
        trustProxy,
      );
      await pw.run('numbers');
      // An older browser (no Sec-Fetch-Site) on another site, or a script, claiming the app's proxy sent it there.
      const forged = await fetch(`${url}/parallel-worker/numbers/reset`, {
        method: 'POST',
        headers: {
          [DASHBOARD_HEADER]: '1',
          origin: 'https://evil.example',
          'x-forwarded-host': 'evil.example',
        },
      });
      expect(forged.status).toBe(trustProxy ? 200 : 403);
      expect((await pw.status('numbers')).cursor).toBe(trustProxy ? null : 200);
      // From the app's own origin, without any forwarded header: accepted either way.
      const own = await fetch(`${url}/parallel-worker/numbers/reset`, {
        method: 'POST',
        headers: { [DASHBOARD_HEADER]: '1', origin: url },
      });
      expect(own.status).toBe(200);
      await app.close();
    }
  });

  it('shows stored errors without the secrets they quote', async () => {
    const { app, url, pw } = await start(adapter, {});
    poison = [15];
    poisonNote =
      ' at redis://app:dash-s3cret@10.1.1.1:6379/0?password=dash-s3cret';
    await pw.run('numbers');
    // A run record as an older version stored it, its error quoting a URL.
    const redis = new Redis('redis://127.0.0.1:6379');
    const store = new RedisStore(redis, `${PREFIX}-${apps}`);
    const [run] = await pw.history('numbers');
    await store.job('numbers').recordRun({
      record: {
        ...run,
        runId: 'old-run',
        error: 'lost redis://:dash-s3cret@10.1.1.1:6379',
      },
      keep: 10,
    });
    await redis.quit();
    const html = await (await fetch(`${url}/parallel-worker`)).text();
    expect(html).toContain(
      'poison &lt;b&gt;11&lt;/b&gt; at redis://***@10.1.1.1:6379/0?***',
    );
    expect(html).toContain('lost redis://***@10.1.1.1:6379');
    const live = await (await fetch(`${url}/parallel-worker/live.json`)).text();
    expect(html + live).not.toContain('dash-s3cret');
    await app.close();
  });

  it('pages a few thousand dead letters and runs the app’s guards', async () => {
    const { app, url, pw } = await start(
      adapter,
      { guards: [NeedsToken], imports: [AuthModule], deadPageSize: 50 },
      'api',
    );
    rows = 3000;
    poison = Array.from({ length: 3000 }, (_, i) => i + 1);
    await pw.run('numbers');
    const page = `${url}/api/parallel-worker`;
    expect((await fetch(page)).status).toBe(403);
    const auth = { authorization: 'Bearer ops' };
    const first = await (await fetch(page, { headers: auth })).text();
    expect(first).toContain('300 in all; showing 1–50, oldest first.');
    expect(first.match(/<tr><td>\d+, /g)).toHaveLength(50);
    // Every URL of the page has the app's global prefix, and the page links work as the browser follows them.
    expect(first).toContain(
      '<link rel="stylesheet" href="/api/parallel-worker/dashboard.css">',
    );
    const link = (html: string, rel: string) =>
      (html.match(new RegExp(`<a href="([^"]+)" rel="${rel}">`)) ?? [])[1]
        ?.replace(/&amp;/g, '&')
        .replace(/#.*$/, '');
    let html = first;
    for (let i = 0; i < 5; i++) {
      const next = await fetch(`${url}${link(html, 'next')}`, {
        headers: auth,
      });
      expect(next.status).toBe(200);
      html = await next.text();
    }
    expect(html).toContain('showing 251–300');
    expect(html).toContain('rel="prev"');
    expect(html).not.toContain('rel="next"');
    const live = await fetch(
      `${page}/live.json?job=numbers&dead=${Number.MAX_VALUE}`,
      { headers: auth },
    );
    expect(live.status).toBe(200);
    expect(
      ((await live.json()) as { jobs: { numbers: { dead: string } } }).jobs
        .numbers.dead,
    ).toContain('<a href="/api/parallel-worker?job=numbers&amp;dead=');
    await app.close();
  });
});

describe('dashboard: a run with dead letters', () => {
  it('shows it as completed with its dead letters, never as a plain green completed', async () => {
    const { app, url, pw } = await start('express', { path: 'jobs' });
    poison = [15];
    await pw.run('numbers');
    const html = await (await fetch(`${url}/jobs`)).text();
    const state = /State<\/dt><dd[^>]*>(<span[^>]*>[^<]*<\/span>)/.exec(html);
    expect(state?.[1]).toBe(
      '<span class="badge badge-dead">completed with 1 dead letter</span>',
    );
    // The run's line in the history says so too.
    expect(html).toMatch(
      /<td><span class="badge badge-dead">completed with 1 dead letter<\/span><\/td>/,
    );
    expect(html).not.toContain('badge-done');
    // Once its dead letters were handled, the job is plainly done; the run that left them still says so.
    poison = [];
    await pw.retryDead('numbers');
    await pw.run('numbers');
    const after = await (await fetch(`${url}/jobs`)).text();
    expect(
      /State<\/dt><dd[^>]*>(<span[^>]*>[^<]*<\/span>)/.exec(after)?.[1],
    ).toBe('<span class="badge badge-done">completed</span>');
    expect(
      [
        ...after.matchAll(/<td>(<span class="badge[^>]*>[^<]*<\/span>)<\/td>/g),
      ].map((m) => m[1]),
    ).toEqual([
      '<span class="badge badge-done">completed</span>',
      '<span class="badge badge-dead">completed with 1 dead letter</span>',
    ]);
    await app.close();
  });
});

describe('dashboard misuse', () => {
  it('without a global ParallelWorkerModule: the bootstrap fails saying how to register it, not with a bare DI error', async () => {
    const boot = Test.createTestingModule({
      imports: [
        ParallelWorkerModule.forRoot({
          workers: 0,
          storage: 'memory',
          logging: { enabled: false },
        }),
        ParallelWorkerDashboardModule.register({}),
      ],
      providers: [Numbers],
    }).compile();
    await expect(boot).rejects.toThrow(
      'ParallelWorkerDashboardModule: the dashboard cannot see ParallelWorker, so it has no jobs to show. Register the module as global, ParallelWorkerModule.forRoot({ isGlobal: true, … })',
    );
  });

  it('with the module that exports it in imports: the page shows its jobs', async () => {
    @Module({
      imports: [
        ParallelWorkerModule.forRoot({
          workers: 0,
          storage: 'memory',
          logging: { enabled: false },
        }),
      ],
      providers: [Numbers],
      exports: [ParallelWorkerModule],
    })
    class JobsModule {}
    const moduleRef = await Test.createTestingModule({
      imports: [
        JobsModule,
        ParallelWorkerDashboardModule.register({
          path: 'jobs',
          imports: [JobsModule],
        }),
      ],
    }).compile();
    const app = moduleRef.createNestApplication();
    await app.listen(0, '127.0.0.1');
    try {
      const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
      const page = await (await fetch(`${url}/jobs`)).text();
      expect(page).toContain('numbers');
    } finally {
      await app.close();
    }
  });
});
