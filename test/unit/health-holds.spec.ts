import { Injectable, Logger } from '@nestjs/common';
import { EventEmitterModule, OnEvent } from '@nestjs/event-emitter';
import { Test } from '@nestjs/testing';
import {
  type HealthIndicator,
  type HealthSignal,
  type ID,
  MemoryStore,
  type LoadContext,
  ParallelWorker,
  ParallelWorkerConfigError,
  ParallelWorkerEvent,
  ParallelWorkerModule,
  type ParallelWorkerOptions,
  type Range,
  RangeHandler,
  RangeLoader,
  type RunHeldEvent,
} from '../../lib';
import { replaceCalls } from '../support/replace-calls';

/** 1..60 in ranges of 5, in process; each handler call is timed. */
@Injectable()
class Rows {
  static calls: { at: number; ids: ID[] }[] = [];
  static limits: { at: number; limit: number }[] = [];
  /** Called in the handler of the range with id 60. */
  static onLast?: () => Promise<void>;
  static slow = 20;
  static total = 60;

  @RangeLoader('rows')
  next(lastId: ID | null, ctx: LoadContext): number[] {
    Rows.limits.push({ at: Date.now(), limit: ctx.limit });
    const from = Number(lastId ?? 0) + 1;
    return Array.from(
      { length: Math.max(0, Math.min(ctx.limit, Rows.total - from + 1)) },
      (_, i) => from + i,
    );
  }

  @RangeHandler('rows')
  async handle({ idsRange }: Range): Promise<void> {
    Rows.calls.push({ at: Date.now(), ids: idsRange });
    if (idsRange.includes(60)) await Rows.onLast?.();
    await new Promise((r) => setTimeout(r, Rows.slow));
  }
}

@Injectable()
class Held {
  static events: RunHeldEvent[] = [];
  @OnEvent(ParallelWorkerEvent.RunHeld)
  held(e: RunHeldEvent) {
    Held.events.push(e);
  }
}

const inline: ParallelWorkerOptions = {
  workers: 0,
  storage: 'memory',
  rangeSize: 5,
  logging: { level: 'warn' },
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const handledIds = () =>
  Rows.calls
    .flatMap((c) => c.ids)
    .map(Number)
    .sort((a, b) => a - b);
const all = Array.from({ length: 60 }, (_, i) => i + 1);

let warnings: string[];
beforeEach(() => {
  Rows.calls = [];
  Rows.limits = [];
  Rows.onLast = undefined;
  Rows.slow = 20;
  Rows.total = 60;
  Held.events = [];
  warnings = [];
  jest
    .spyOn(Logger.prototype, 'warn')
    .mockImplementation((message) => void warnings.push(String(message)));
});
afterEach(() => jest.restoreAllMocks());

async function app(options: ParallelWorkerOptions) {
  const moduleRef = await Test.createTestingModule({
    imports: [
      EventEmitterModule.forRoot(),
      ParallelWorkerModule.forRoot({ ...inline, ...options }),
    ],
    providers: [Rows, Held],
  }).compile();
  return moduleRef.init();
}

/** An indicator that says hold (for `holdMs`) while `held()` is true, ok otherwise; counts its calls. */
function switchable(holdMs?: number) {
  const state = { held: false, calls: 0 };
  const indicator: HealthIndicator = async () => {
    state.calls++;
    return state.held
      ? {
          state: 'hold',
          reason: 'replica lag 7.2 s > maxReplicationLagMs 5000',
          ...(holdMs && { holdMs }),
        }
      : { state: 'ok' };
  };
  indicator.indicatorName = 'replica';
  return { state, indicator };
}

describe('the health option (in process, workers: 0)', () => {
  it('hands out nothing while an indicator says hold, shows the hold, then goes on by itself', async () => {
    const { state, indicator } = switchable(150);
    state.held = true;
    const a = await app({ health: [indicator], healthIntervalMs: 100 });
    const pw = a.get(ParallelWorker);
    const run = pw.run('rows');
    await sleep(250);
    // Held from the first answer: nothing was handed out.
    expect(Rows.calls).toEqual([]);
    const status = await pw.status('rows');
    expect(status.hold).toEqual({
      reason: 'replica lag 7.2 s > maxReplicationLagMs 5000',
      indicator: 'replica',
      since: expect.any(Number),
      until: expect.any(Number),
    });
    const releasedAt = Date.now();
    state.held = false;
    const summary = await run;
    expect(summary).toMatchObject({ status: 'completed', ids: 60 });
    expect(handledIds()).toEqual(all);
    // Every handler call began after the hold ended.
    expect(Math.min(...Rows.calls.map((c) => c.at))).toBeGreaterThanOrEqual(
      (status.hold as { until: number }).until - 5,
    );
    expect(releasedAt).toBeGreaterThan(0);
    expect(summary.heldMs).toBeGreaterThanOrEqual(250);
    const [record] = await pw.history('rows', { limit: 1 });
    expect(record.summary.heldMs).toBe(summary.heldMs);
    expect(Held.events[0]).toMatchObject({
      job: 'rows',
      indicator: 'replica',
      reason: 'replica lag 7.2 s > maxReplicationLagMs 5000',
      holdMs: 150,
    });
    expect((await pw.status('rows')).hold).toBeUndefined();
    await a.close();
  });

  it('holds mid-run: ranges in flight finish, nothing new starts until the hold ends', async () => {
    const { state, indicator } = switchable(300);
    const a = await app({ health: [indicator], healthIntervalMs: 50 });
    const pw = a.get(ParallelWorker);
    const run = pw.run('rows');
    while (Rows.calls.length < 2) await sleep(5);
    state.held = true;
    while (!(await pw.status('rows')).hold) await sleep(5);
    const hold = (await pw.status('rows')).hold as {
      since: number;
      until: number;
    };
    state.held = false;
    expect(await run).toMatchObject({ status: 'completed', ids: 60 });
    expect(handledIds()).toEqual(all);
    // No range started inside the hold (one sent just before it may have started as it began).
    const inside = Rows.calls.filter(
      (c) => c.at > hold.since + 30 && c.at < hold.until - 5,
    );
    expect(inside).toEqual([]);
    expect(Rows.calls.some((c) => c.at >= hold.until - 5)).toBe(true);
    await a.close();
  });

  it('backs the adaptive range size off after a hold, and grows it back', async () => {
    const { state, indicator } = switchable(100);
    const a = await app({
      health: [indicator],
      healthIntervalMs: 50,
      rangeSize: undefined,
      targetRangeMs: 500,
      minRangeSize: 1,
      maxRangeSize: 4,
    });
    const pw = a.get(ParallelWorker);
    const run = pw.run('rows');
    while (!Rows.limits.some((l) => l.limit === 4)) await sleep(5);
    state.held = true;
    while (!(await pw.status('rows')).hold) await sleep(5);
    const since = (await pw.status('rows')).hold?.since as number;
    state.held = false;
    expect(await run).toMatchObject({ status: 'completed', ids: 60 });
    const after = Rows.limits.filter((l) => l.at > since).map((l) => l.limit);
    expect(after[0]).toBe(2);
    expect(after).toContain(4);
    await a.close();
  });

  it('ends a run whose last range ended during a hold, without waiting for the hold to end', async () => {
    const { state, indicator } = switchable(5000);
    Rows.onLast = async () => {
      state.held = true;
      // The next ask (every 50 ms) puts the hold while this last range is still in flight.
      await sleep(200);
    };
    const a = await app({ health: [indicator], healthIntervalMs: 50 });
    const pw = a.get(ParallelWorker);
    const started = Date.now();
    const summary = await pw.run('rows');
    expect(summary).toMatchObject({ status: 'completed', ids: 60 });
    expect(summary.heldMs).toBeGreaterThan(0);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(handledIds()).toEqual(all);
    await a.close();
  });

  it('holds every host, also one without the health option, and one host asks per interval', async () => {
    const store = new MemoryStore();
    let asks = 0;
    let holding = false;
    const indicator: HealthIndicator = async () => {
      asks++;
      return holding
        ? { state: 'hold', reason: 'lag', holdMs: 100 }
        : { state: 'ok' };
    };
    const withHealth = await app({
      storage: store,
      health: [indicator],
      healthIntervalMs: 100,
    });
    // The host without indicators reaches the same store through a handle that counts its health turns.
    let turnsWithout = 0;
    const without = await app({
      storage: {
        job: (name: string) =>
          replaceCalls(store.job(name), {
            healthTurn: (o) => {
              turnsWithout++;
              return store.job(name).healthTurn?.(o) ?? Promise.resolve(false);
            },
          }),
      },
    });
    // Enough work for the run to outlast the hold: 80 ranges of 40 ms, one at a time per host.
    Rows.slow = 40;
    Rows.total = 400;
    const runs = [
      withHealth.get(ParallelWorker).run('rows'),
      without.get(ParallelWorker).run('rows'),
    ];
    while (Rows.calls.length < 3) await sleep(5);
    holding = true;
    const pw = without.get(ParallelWorker);
    while (!(await pw.status('rows')).hold) await sleep(5);
    const since = Date.now();
    const asksBefore = asks;
    await sleep(1500);
    const during = Rows.calls.filter((c) => c.at > since + 700);
    const asked = asks - asksBefore;
    holding = false;
    await Promise.all(runs);
    expect(handledIds()).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    // Within a second of the hold every host stopped: none started a range in the rest of it.
    expect(during).toEqual([]);
    // One host asks per interval (1,500 ms / 100 ms), not every host at every hold's end.
    expect(asked).toBeLessThanOrEqual(17);
    expect(asked).toBeGreaterThanOrEqual(5);
    // A host with no indicators of its own never takes the turn from one that has them.
    expect(turnsWithout).toBe(0);
    await withHealth.close();
    await without.close();
  });

  it('counts an indicator that throws or hangs as unknown: a warning, the run goes on', async () => {
    const throws: HealthIndicator = async () => {
      throw new Error('connect ECONNREFUSED 127.0.0.1:5999');
    };
    const hangs: HealthIndicator = () => new Promise<HealthSignal>(() => {});
    hangs.indicatorName = 'hangs';
    const a = await app({
      health: [throws, hangs],
      healthIntervalMs: 50,
      healthTimeoutMs: 30,
    });
    expect(await a.get(ParallelWorker).run('rows')).toMatchObject({
      status: 'completed',
      ids: 60,
      heldMs: 0,
    });
    expect(warnings).toContain(
      'Job "rows": health indicator throws could not tell (connect ECONNREFUSED 127.0.0.1:5999); counted as unknown, so handing out goes on (set holdOnUnknown: true to hold instead). It is asked again at the next healthIntervalMs.',
    );
    expect(warnings).toContain(
      'Job "rows": health indicator hangs could not tell (no answer within healthTimeoutMs (30 ms)); counted as unknown, so handing out goes on (set holdOnUnknown: true to hold instead). It is asked again at the next healthIntervalMs.',
    );
    await a.close();
  });

  it('holds on unknown with holdOnUnknown', async () => {
    let fail = true;
    const flaky: HealthIndicator = async () => {
      if (fail) throw new Error('timeout reading pg_stat_replication');
      return { state: 'ok' };
    };
    const a = await app({
      health: [flaky],
      healthIntervalMs: 100,
      holdOnUnknown: true,
    });
    const pw = a.get(ParallelWorker);
    const run = pw.run('rows');
    await sleep(150);
    expect(Rows.calls).toEqual([]);
    expect((await pw.status('rows')).hold?.reason).toBe(
      'unknown (holdOnUnknown): timeout reading pg_stat_replication',
    );
    fail = false;
    expect(await run).toMatchObject({ status: 'completed', ids: 60 });
    await a.close();
  });

  it('refuses the run before anything starts when an indicator cannot work', async () => {
    const bad: HealthIndicator = async () => ({ state: 'ok' });
    bad.indicatorName = 'postgresHealth';
    bad.verify = async () => {
      throw new ParallelWorkerConfigError(
        'postgresHealth: table "userz" (option tables) does not exist.',
      );
    };
    const a = await app({ health: [bad] });
    const pw = a.get(ParallelWorker);
    await expect(pw.run('rows')).rejects.toThrow(
      'postgresHealth: table "userz" (option tables) does not exist.',
    );
    expect(Rows.calls).toEqual([]);
    expect((await pw.status('rows')).state).toBe('idle');
    await a.close();
  });

  it('refuses a health option that is not a list of indicators, naming it', async () => {
    await expect(
      app({ health: 'postgres://db' as unknown as HealthIndicator[] }),
    ).rejects.toThrow(
      /^ParallelWorkerModule: option "health" must be an array of health indicators/,
    );
    await expect(
      app({ holdOnUnknown: 'yes' as unknown as boolean }),
    ).rejects.toThrow(
      'ParallelWorkerModule: option "holdOnUnknown" must be true or false, got',
    );
  });
});
