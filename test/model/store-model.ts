import type { ID, PartitionBounds } from '../../lib';
import { InvalidRangeError, RunRefusedError } from '../../lib';
import type { StoreKind, StoreUnderTest } from './store-adapter';

/**
 * A small reference model of the coordination protocol: what the test's
 * hosts were told by the store (leases, retries, dead letters, each id's
 * fate), checked against the store's answers after every step.
 */

/** The table the job runs over. */
export const TABLE: readonly number[] = Array.from(
  { length: 30 },
  (_, i) => i + 1,
);

export type Host = 'a' | 'b';
export type OtherAppCall =
  'startRun' | 'reset' | 'cancel' | 'pause' | 'retryDead';

/** One step of a sequence: a store call of one of the app's hosts, a fault, or a call of another app. Plain data, so a failing sequence can be kept as a test. */
export type Step =
  | { do: 'startRun'; host: Host; from?: number | null }
  | {
      do: 'startPlannedRun';
      host: Host;
      plan: PartitionBounds[];
      from?: number | null;
      /** The CLI's reset lands after the plan was computed, before it is stored. */
      resetBetween?: boolean;
    }
  | { do: 'claim'; host: Host }
  /** Commits the host's load: consecutive ranges of these sizes from the table. */
  | { do: 'commit'; host: Host; sizes: number[] }
  /** Completes one of the host's leases (by index), or all of them. */
  | { do: 'complete'; host: Host; lease: number | 'all' }
  | { do: 'fail'; host: Host; lease: number; dead: boolean; retryInMs: number }
  | { do: 'release'; host: Host }
  | { do: 'heartbeat'; host: Host }
  | { do: 'timePasses' }
  | { do: 'leasesExpire' }
  /** The host stops heartbeating past its lease time while the other keeps going. */
  | { do: 'hostStalls'; host: Host }
  /** The host is gone: its leases are left to expire; it comes back as a new host. */
  | { do: 'hostDies'; host: Host }
  /** A new process over the same store state (the memory store forgets everything). */
  | { do: 'restartProcess' }
  | { do: 'loseState'; part: string }
  | { do: 'reset' }
  | { do: 'cancel' }
  | { do: 'retryDead' }
  | { do: 'otherApp'; call: OtherAppCall }
  /** Host a works until the store answers done (starting a run when none is going on). */
  | { do: 'drain' };

/** An invariant the store broke. */
export class ModelViolation extends Error {
  override readonly name = 'ModelViolation';
}

export type Fate = 'todo' | 'loaded' | 'done' | 'dead' | 'skipped';

export interface HeldRange {
  ids: number[];
  key: string;
}

export interface MirrorLease extends HeldRange {
  token: number;
  owner: string;
  deadline: number;
  runId: string;
}

export const keyOf = (ids: ID[]) => JSON.stringify(ids);

export class Model {
  /** Store time the test moved, in ms. */
  now = 0;
  runId: string | null = null;
  running = false;
  /** The store keeps the job as this app's (a run of it was started). */
  declared = false;
  readonly fates = new Map<number, Fate>(TABLE.map((id) => [id, 'todo']));
  /** What the store should hold, as the hosts were told. */
  leases: MirrorLease[] = [];
  pending: HeldRange[] = [];
  dead: HeldRange[] = [];
  readonly loads = new Map<Host, { cursor: ID | null; partition?: number }>();
  joined = new Set<Host>();
  readonly generation: Record<Host, number> = { a: 0, b: 0 };
  maxToken = 0;
  completedInRun = 0;
  idsInRun = 0;
  /** `unreported`: part of the state was lost and no call said so yet. */
  loss: 'none' | 'unreported' | 'reported' = 'none';
  /** How often a call said the state was lost. */
  lossesReported = 0;
  /** How often a planned start was refused for a gap between its partitions. */
  gapsRefused = 0;
  runs = 0;

  /**
   * `without`: as MODEL_WITHOUT; `expiredComplete` leaves out completes of a
   * lease past its deadline (to look past item 1 of issue 23 while the store
   * still counts them).
   */
  constructor(
    readonly kind: StoreKind,
    readonly without: readonly string[] = [],
  ) {}

  owner(host: Host): string {
    return `host-${host}-${this.generation[host]}`;
  }

  leasesOf(host: Host): MirrorLease[] {
    return this.leases.filter((l) => l.owner === this.owner(host));
  }

  live(l: MirrorLease): boolean {
    return l.deadline > this.now;
  }

  setFates(ids: number[], fate: Fate): void {
    for (const id of ids) this.fates.set(id, fate);
  }
}

export const fail = (message: string): never => {
  throw new ModelViolation(message);
};

/** Whether the step makes sense now (fast-check's precondition; a replay skips the others the same way). */
export function canApply(m: Model, step: Step): boolean {
  switch (step.do) {
    case 'claim':
      return m.running && m.joined.has(step.host) && !m.loads.has(step.host);
    case 'commit':
      return m.running && m.loads.has(step.host);
    case 'complete':
    case 'fail':
    case 'heartbeat':
      return m.leasesOf(step.host).length > 0;
    case 'release':
      return m.leasesOf(step.host).some((l) => m.live(l));
    case 'loseState':
      return m.kind !== 'memory';
    case 'otherApp':
      return m.declared && m.loss === 'none';
    default:
      return true;
  }
}

/** A store call: refusals are answers; any other error is the store reporting a loss, or a bug when nothing was lost. */
export async function call<T>(
  m: Model,
  sut: StoreUnderTest,
  what: string,
  fn: () => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; refused?: Error }> {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    if (e instanceof ModelViolation) throw e;
    if (e instanceof RunRefusedError || e instanceof InvalidRangeError)
      return { ok: false, refused: e };
    if (m.loss === 'none')
      fail(
        `${what} threw "${(e as Error).message}" with no state lost (or after the job was started again)`,
      );
    await lossReported(m, sut);
    return { ok: false };
  }
}

/** A call said the state is lost: the host's run fails, as the run engine does. */
export async function lossReported(
  m: Model,
  sut: StoreUnderTest,
): Promise<void> {
  m.loss = 'reported';
  m.lossesReported++;
  if (m.running && m.runId)
    await sut.endRun(m.runId, 'failed', 'state lost').catch(() => undefined);
  m.running = false;
  m.joined.clear();
  m.loads.clear();
}

export function takeToken(m: Model, token: number): void {
  if (!(token > m.maxToken))
    fail(`fencing token ${token} is not above ${m.maxToken}, issued before`);
  m.maxToken = token;
}

export function onReset(m: Model): void {
  m.leases = [];
  m.pending = [];
  m.setFates([...TABLE], 'todo');
  m.running = false;
  m.joined.clear();
  m.loads.clear();
}

/** After a loss was reported, `reset` or `from` starts the job again: the model takes the store's dead letters as they are. */
export async function startedAgain(
  m: Model,
  sut: StoreUnderTest,
): Promise<void> {
  // An unreported loss stays unreported: what was lost (dead letters, retries kept by `from`) is still missing.
  if (m.loss !== 'reported') return;
  m.loss = 'none';
  const dead = await call(m, sut, 'deadLetters', () => sut.deadLetters());
  if (dead.ok)
    m.dead = dead.value.map((d) => {
      const ids = d.range.ids as number[];
      return { ids, key: keyOf(ids) };
    });
}

function onFrom(m: Model, from: number | null): void {
  if (m.loss === 'reported') {
    m.leases = [];
    m.pending = [];
  }
  if (m.loss !== 'none') {
    // Ranges after `from` are loaded again: one the store lost unseen skips nothing, so it need not be handed out again.
    const before = (r: HeldRange) =>
      from !== null && r.ids.some((id) => id <= from);
    m.leases = m.leases.filter(before);
    m.pending = m.pending.filter(before);
  }
  if (from === null) {
    m.pending = [];
    m.setFates([...TABLE], 'todo');
    return;
  }
  for (const id of TABLE) {
    const fate = m.fates.get(id);
    if (id > from) m.fates.set(id, 'todo');
    else if (fate === 'todo' || (m.loss === 'reported' && fate === 'loaded'))
      m.fates.set(id, 'skipped');
  }
}

export async function started(
  m: Model,
  sut: StoreUnderTest,
  host: Host,
  answer: { runId: string; joined: boolean },
  from: number | null | undefined,
): Promise<void> {
  if (answer.joined) {
    if (m.running && answer.runId !== m.runId) {
      if (m.loss === 'none')
        fail(
          `startRun joined run ${answer.runId} while run ${m.runId} was going on`,
        );
      await lossReported(m, sut);
    }
    m.runId = answer.runId;
    m.running = true;
    m.joined.add(host);
    return;
  }
  if (m.running && from === undefined) {
    // The store answers a different run than the one the hosts are in: it lost it.
    if (m.loss === 'none')
      fail(
        `startRun started run ${answer.runId} while run ${m.runId} was going on, with nothing lost`,
      );
    await lossReported(m, sut);
  }
  if (from !== undefined) {
    onFrom(m, from);
    await startedAgain(m, sut);
  } else if (m.loss === 'reported') {
    // The store started again by itself (it lost the run too): what it lost must be handled again, none skipped.
    m.leases = [];
    m.pending = [];
    for (const id of TABLE)
      if (m.fates.get(id) === 'loaded') m.fates.set(id, 'todo');
    await startedAgain(m, sut);
    // What else it lost may still be found later (a deadline left of a lease lost before): reported, never answered done over.
    m.loss = 'unreported';
  }
  Object.assign(m, {
    runId: answer.runId,
    running: true,
    declared: true,
    joined: new Set([host]),
    completedInRun: 0,
    idsInRun: 0,
  });
  m.loads.clear();
}

/** The store said the run is over: every id must be done or dead-lettered, and nothing it was told to keep missing. */
export async function answeredDone(
  m: Model,
  sut: StoreUnderTest,
): Promise<void> {
  if (!m.running || !m.runId) return;
  const got = await call(m, sut, 'state', () => sut.state());
  if (!got.ok) return;
  const s = got.value;
  if (s.runId !== m.runId) {
    if (m.loss === 'none')
      fail(
        `claim answered done for run ${s.runId}, not run ${m.runId}, with nothing lost`,
      );
    await lossReported(m, sut);
    return;
  }
  if (m.loss !== 'reported') {
    const open = TABLE.filter((id) =>
      ['todo', 'loaded'].includes(m.fates.get(id) as Fate),
    );
    const held = [
      ...m.leases.map((l) => l.key),
      ...m.pending.map((p) => p.key),
    ];
    const why =
      m.loss === 'unreported'
        ? 'after part of its state was lost, with no "state lost"'
        : 'with nothing lost';
    if (open.length)
      fail(
        `claim answered done ${why}: ids ${open.join(',')} were never completed or dead-lettered (held ranges ${held.join(' ') || 'none'})`,
      );
    if (held.length)
      fail(
        `claim answered done ${why} while ranges ${held.join(' ')} were still leased or waiting for a retry`,
      );
    if (s.dead !== m.dead.length)
      fail(
        `claim answered done ${why} with ${s.dead} dead letters kept, not ${m.dead.length}`,
      );
  }
  const runId = m.runId;
  await call(m, sut, 'endRun', () => sut.endRun(runId, 'completed'));
  m.running = false;
  m.joined.clear();
  m.loads.clear();
}

/** After every step: nothing counted that no handler finished; dead letters kept. */
export async function check(m: Model, sut: StoreUnderTest): Promise<void> {
  if (m.loss !== 'none') return;
  const got = await call(m, sut, 'state', () => sut.observe());
  if (!got.ok) return;
  const s = got.value;
  if (s.runId === m.runId && m.runId !== null) {
    if (s.counters.completed > m.completedInRun)
      fail(
        `the store counts ${s.counters.completed} ranges completed in run ${m.runId}; handlers finished ${m.completedInRun}`,
      );
    if (s.counters.ids > m.idsInRun)
      fail(
        `the store counts ${s.counters.ids} ids done in run ${m.runId}; handlers finished ${m.idsInRun}`,
      );
  }
  if (s.dead !== m.dead.length)
    fail(
      `the store keeps ${s.dead} dead letters; ${m.dead.length} ranges were dead-lettered`,
    );
  const gap = s.partitions && gapIn(s.partitions);
  if (gap)
    fail(
      `the store keeps partitions with a gap ${gap}: its ids are never loaded`,
    );
}

/** The gap between two partitions of a plan (`(2, 3]`), or undefined when they cover every id. */
export function gapIn(plan: PartitionBounds[]): string | undefined {
  for (let i = 1; i < plan.length; i++)
    if (plan[i].after !== plan[i - 1].upTo)
      return `(${String(plan[i - 1].upTo)}, ${String(plan[i].after)}]`;
  return undefined;
}
