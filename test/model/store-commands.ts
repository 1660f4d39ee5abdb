import fc from 'fast-check';
import { LOSABLE, type StoreKind, type StoreUnderTest } from './store-adapter';
import {
  canApply,
  type Host,
  type Model,
  type Step,
  TABLE,
} from './store-model';
import { apply } from './store-steps';

/** One step as a fast-check command; its text is the step's JSON, so a shrunk sequence can be pasted into a test. */
class StepCommand implements fc.AsyncCommand<Model, StoreUnderTest> {
  constructor(readonly step: Step) {}

  check(m: Readonly<Model>): boolean {
    return canApply(m, this.step);
  }

  run(m: Model, sut: StoreUnderTest): Promise<void> {
    return apply(m, sut, this.step);
  }

  toString(): string {
    return JSON.stringify(this.step);
  }
}

const host = fc.constantFrom<Host>('a', 'b');
const from = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 6 },
  { arbitrary: fc.constant(null), weight: 1 },
  { arbitrary: fc.integer({ min: 0, max: TABLE.length }), weight: 1 },
);

/** Two or three partitions over the table; `gap` leaves ids out between two of them (none with `gaps` false). */
const plan = (gaps: boolean) =>
  fc
    .record({
      cuts: fc.uniqueArray(fc.integer({ min: 2, max: TABLE.length - 2 }), {
        minLength: 1,
        maxLength: 2,
      }),
      gap: fc.integer({ min: 0, max: gaps ? 2 : 0 }),
    })
    .map(({ cuts, gap }) => {
      const sorted = [...cuts].sort((x, y) => x - y);
      const ends = [null, ...sorted, null];
      return ends.slice(0, -1).map((after, i) => ({
        after: i === 1 && after !== null ? after + gap : after,
        upTo: ends[i + 1],
      }));
    })
    .filter((bounds) =>
      bounds.every(
        (b) => b.after === null || b.upTo === null || b.after < b.upTo,
      ),
    );

/**
 * The commands of the model test; stores that cannot lose a part of their
 * state get no loss commands. `without`: step names (and `gaps`, for plans
 * with gaps, and `resetBetween`, for resets racing a planned start) left out,
 * to look past a failure already known.
 */
export function commands(kind: StoreKind, without: string[] = []) {
  const record = <T extends Step['do']>(name: T, fields = {}) =>
    fc
      .record({ do: fc.constant(name), ...fields })
      .map((s) => withoutUndefined(s) as unknown as Step);
  /** Each step with its weight among the others. */
  const steps: Partial<Record<Step['do'], [fc.Arbitrary<Step>, number]>> = {
    startRun: [record('startRun', { host, from }), 3],
    startPlannedRun: [
      record('startPlannedRun', {
        host,
        plan: plan(!without.includes('gaps')),
        from,
        resetBetween: without.includes('resetBetween')
          ? fc.constant(false)
          : fc.boolean(),
      }),
      1,
    ],
    claim: [record('claim', { host }), 8],
    commit: [
      record('commit', {
        host,
        sizes: fc.array(fc.integer({ min: 1, max: 5 }), {
          minLength: 1,
          maxLength: 3,
        }),
      }),
      8,
    ],
    complete: [
      record('complete', {
        host,
        lease: fc.oneof(fc.constant('all' as const), fc.nat(3)),
      }),
      7,
    ],
    fail: [
      record('fail', {
        host,
        lease: fc.nat(3),
        dead: fc.boolean(),
        retryInMs: fc.constantFrom(0, 10_000),
      }),
      2,
    ],
    release: [record('release', { host }), 1],
    heartbeat: [record('heartbeat', { host }), 2],
    timePasses: [record('timePasses'), 1],
    leasesExpire: [record('leasesExpire'), 1],
    hostStalls: [record('hostStalls', { host }), 1],
    hostDies: [record('hostDies', { host }), 1],
    restartProcess: [record('restartProcess'), 1],
    reset: [record('reset'), 1],
    cancel: [record('cancel'), 1],
    retryDead: [record('retryDead'), 1],
    otherApp: [
      record('otherApp', {
        call: fc.constantFrom(
          'startRun',
          'reset',
          'cancel',
          'pause',
          'retryDead',
        ),
      }),
      1,
    ],
    drain: [record('drain'), 1],
  };
  if (LOSABLE[kind].length)
    steps.loseState = [
      record('loseState', { part: fc.constantFrom(...LOSABLE[kind]) }),
      3,
    ];
  const kept = Object.entries(steps)
    .filter(([name]) => !without.includes(name))
    .map(([, [arbitrary, weight]]) => ({
      arbitrary: arbitrary.map((s) => new StepCommand(s)),
      weight,
    }));
  return fc.commands([fc.oneof(...kept)], { maxCommands: 40, size: 'max' });
}

/** Steps without their undefined fields, so their JSON is what replays them. */
function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(
    Object.entries(value).filter(([, v]) => v !== undefined),
  ) as T;
}
