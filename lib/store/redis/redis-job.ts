import { createHash } from 'node:crypto';
import type { ID } from '../../interfaces/range.interface';
import type {
  Claim,
  CommitResult,
  DeadLetter,
  Lease,
  PreviousRun,
  RunRecord,
  StartRunResult,
  StoreRunState,
  StoredPartition,
  StoredRange,
} from '../coordination-store.interface';
import type {
  ClaimOptions,
  CommitOptions,
  ControlOptions,
  CountWorkersOptions,
  DeadLettersOptions,
  DeclaredBy,
  RetryDeadOptions,
  EndRunOptions,
  FailOptions,
  HealthTurnOptions,
  HeartbeatOptions,
  HistoryOptions,
  HoldOptions,
  JobStore,
  LeaseTokens,
  LeaveOptions,
  RecordRunOptions,
  SetTotalOptions,
  StartOptions,
  TakePermitsOptions,
} from '../job-store.interface';
import { RunRefusedError } from '../../errors/run-refused.error';
import { isLetter } from '../dead-letter-key';
import {
  JOB_DECLARED_ELSEWHERE,
  RESET_BUSY,
  RUN_BUSY,
  STATE_LOST_PART,
} from '../../parallel-worker.messages';
import { CLAIM } from './claim.lua';
import { COMMIT } from './commit.lua';
import { CONTROL } from './control.lua';
import { COUNT_WORKERS } from './count-workers.lua';
import { END_RUN } from './end-run.lua';
import { RESET } from './reset.lua';
import { SET_TOTAL } from './set-total.lua';
import { STATE } from './state.lua';
import { TAKE_PERMITS } from './take-permits.lua';
import { JOB_KEYS, type JobKey } from './keys';
import { COMPLETE } from './complete.lua';
import { FAIL } from './fail.lua';
import { HEARTBEAT } from './heartbeat.lua';
import { LEAVE } from './leave.lua';
import { RELEASE } from './release.lua';
import { RECORD_RUN } from './record-run.lua';
import { REQUEUE_DEAD } from './requeue-dead.lua';
import { START_RUN } from './start-run.lua';
import { READ_DEAD } from './read-dead.lua';
import { READ_HISTORY } from './read-history.lua';
import { LEASE_OWNERS } from './lease-owners.lua';
import { HOLD } from './hold.lua';
import { HEALTH_TURN } from './health-turn.lua';
import { holdView, wholeMs } from '../holds';
import { refuseOtherApp } from '../declaration';
import { pageOf } from '../page';
import { splitRange } from '../split-range';

/** The ioredis calls the store makes; `Redis` and `Cluster` both have them. */
export interface Client {
  evalsha(
    sha: string,
    numKeys: number,
    ...args: (string | number)[]
  ): Promise<unknown>;
  eval(
    script: string,
    numKeys: number,
    ...args: (string | number)[]
  ): Promise<unknown>;
  hget(key: string, field: string): Promise<string | null>;
  scan(
    cursor: string,
    ...args: (string | number)[]
  ): Promise<[string, string[]]>;
  config(action: 'GET', parameter: string): Promise<unknown>;
  /** A Cluster's nodes (ioredis `Cluster`): SCAN sees one node only. */
  nodes?(role: 'master'): Pick<Client, 'scan'>[];
}

class Script {
  readonly sha: string;

  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }
}

const scripts = {
  startRun: new Script(START_RUN),
  claim: new Script(CLAIM),
  commit: new Script(COMMIT),
  heartbeat: new Script(HEARTBEAT),
  complete: new Script(COMPLETE),
  fail: new Script(FAIL),
  release: new Script(RELEASE),
  endRun: new Script(END_RUN),
  countWorkers: new Script(COUNT_WORKERS),
  state: new Script(STATE),
  requeueDead: new Script(REQUEUE_DEAD),
  takePermits: new Script(TAKE_PERMITS),
  control: new Script(CONTROL),
  reset: new Script(RESET),
  setTotal: new Script(SET_TOTAL),
  leave: new Script(LEAVE),
  recordRun: new Script(RECORD_RUN),
  readDead: new Script(READ_DEAD),
  readHistory: new Script(READ_HISTORY),
  leaseOwners: new Script(LEASE_OWNERS),
  hold: new Script(HOLD),
  healthTurn: new Script(HEALTH_TURN),
};

type Raw = (string | number)[];

/**
 * A script's reply, unless it is `{ 'declared', stored }` (see declared.lua):
 * then the job is another app's, and `call` is refused.
 */
function allowed<T>(
  job: string,
  reply: T,
  declaredBy: string | undefined,
  call: string,
): T {
  if (Array.isArray(reply) && reply[0] === 'declared')
    refuseOtherApp(job, String(reply[1]), declaredBy, call);
  return reply;
}

const parseLease = (owner: string, raw: Raw): Lease => ({
  token: Number(raw[0]),
  attempt: Number(raw[1]),
  runId: String(raw[2]),
  range: JSON.parse(String(raw[3])) as StoredRange,
  owner,
  deadline: Number(raw[4]),
});

/** The partitions hash (`n`, then `<i>:<field>`; see partitions.lua) as the store's partitions; undefined when the job has none. */
function parsePartitions(flat: string[]): StoredPartition[] | undefined {
  const h: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) h[flat[i]] = flat[i + 1];
  if (!h.n) return undefined;
  return Array.from({ length: Number(h.n) }, (_, i): StoredPartition => {
    const f = (name: string) => h[`${i}:${name}`];
    return {
      after: JSON.parse(f('after')),
      upTo: JSON.parse(f('upTo')),
      cursor: JSON.parse(f('cursor')),
      exhausted: f('exhausted') === '1',
      ids: Number(f('ids') ?? 0),
      ...(f('owner') !== undefined && {
        loader: { owner: f('owner'), until: Number(f('until')) },
      }),
    };
  });
}

/** What a job's handle takes from its Redis store. */
export interface RedisConnection {
  client: Client;
  /** A run is starting: the store checks, once, whether Redis may evict its keys. */
  starting(): void;
}

/**
 * One job of a `RedisStore`: every call is one Lua script on the job's keys,
 * which share the hash tag `{<storageKey>:<job>}`. Scripts run by SHA and are
 * sent again when Redis lost its script cache (a restart, SCRIPT FLUSH).
 */
export class RedisJob implements JobStore {
  /** The job's keys in JOB_KEYS order: the KEYS of every script. */
  private readonly keys: string[];

  constructor(
    private readonly name: string,
    prefix: string,
    private readonly redis: RedisConnection,
  ) {
    const tag = `{${prefix}:${name}}`;
    this.keys = JOB_KEYS.map((k) => `${tag}:${k}`);
  }

  private key(name: JobKey): string {
    return this.keys[JOB_KEYS.indexOf(name)];
  }

  private async run(
    script: Script,
    ...args: (string | number)[]
  ): Promise<any> {
    const keys = this.keys;
    const client = this.redis.client;
    try {
      return await client.evalsha(script.sha, keys.length, ...keys, ...args);
    } catch (e) {
      if (!String((e as Error).message).includes('NOSCRIPT')) throw e;
      return client.eval(script.lua, keys.length, ...keys, ...args);
    }
  }

  async start({
    runId,
    from,
    declaredBy,
    partitions,
    start,
    plannedFrom,
  }: StartOptions): Promise<StartRunResult> {
    const job = this.name;
    this.redis.starting();
    // The start fields given, as name and value pairs for the meta hash.
    const fields = Object.entries({
      params: start?.params,
      startedBy: start?.startedBy,
      startedOn: start?.host,
    }).filter(([, v]) => v !== undefined) as [string, string][];
    const [id, value, params] = await this.run(
      scripts.startRun,
      runId,
      from === undefined ? '0' : '1',
      JSON.stringify(from ?? null),
      declaredBy ?? '',
      fields.length,
      ...fields.flat(),
      plannedFrom === undefined ? '' : JSON.stringify(plannedFrom),
      // Encoded as the cursor is: a partition's cursor starts as its `after`, compared as sent.
      ...(partitions ?? []).flatMap((p) => [
        JSON.stringify(p.after ?? null),
        JSON.stringify(p.upTo ?? null),
      ]),
    );
    if (id === 'declared')
      throw new RunRefusedError(
        job,
        JOB_DECLARED_ELSEWHERE(job, String(value), declaredBy as string),
      );
    if (id === 'busy') throw new RunRefusedError(job, RUN_BUSY(String(value)));
    if (id === 'replan')
      return { replanFrom: JSON.parse(String(value)) as ID | null };
    // { 'lost', parts, runId }: the third element is the run the parts were lost from.
    if (id === 'lost')
      throw new RunRefusedError(
        job,
        STATE_LOST_PART(job, params ? String(params) : null, String(value)),
      );
    return {
      runId: String(id),
      joined: Number(value) === 1,
      ...(params != null && { params: String(params) }),
    };
  }

  async claim({
    owner,
    leaseMs,
    request,
    loading,
  }: ClaimOptions): Promise<Claim> {
    const job = this.name;
    const r: Raw = await this.run(
      scripts.claim,
      owner,
      leaseMs,
      request ?? '',
      ...(loading ?? []),
    );
    switch (r[0]) {
      case 'lease':
        return {
          type: 'lease',
          reason: r[1] as 'expired' | 'retry' | 'released',
          lease: parseLease(owner, r.slice(2)),
        };
      case 'load':
        return {
          type: 'load',
          cursor: JSON.parse(String(r[1])),
          ...(r.length > 2 && { partition: Number(r[2]) }),
        };
      case 'wait':
        return { type: 'wait', retryInMs: Number(r[1]) };
      case 'failed':
        return {
          type: 'failed',
          error: r[2]
            ? STATE_LOST_PART(job, String(r[3]) || null, String(r[2]))
            : String(r[1]),
        };
      case 'cancelled':
        return { type: 'cancelled' };
      default:
        return { type: 'done' };
    }
  }

  async commit({
    owner,
    expected,
    ranges,
    leaseMs,
    request,
    partition,
  }: CommitOptions): Promise<CommitResult> {
    const job = this.name;
    const args: (string | number)[] = [
      owner,
      JSON.stringify(expected),
      leaseMs,
      JSON.stringify(ranges.at(-1)?.lastId ?? null),
      request ?? '',
      partition ?? '',
    ];
    for (const range of ranges)
      args.push(JSON.stringify(range), range.ids.length);
    const r: Raw = await this.run(scripts.commit, ...args);
    if (r[0] === 'partitions')
      throw new Error(
        `Job "${job}": a commit for partition ${partition} of a job with ${r[1] === '' ? 'no' : Number(r[1])} partitions; hosts of different versions of the app may be sharing the store.`,
      );
    if (r[0] === 'exhausted') return { type: 'exhausted' };
    if (r[0] === 'conflict')
      return { type: 'conflict', cursor: JSON.parse(String(r[1])) };
    const [, due, runId, deadline, ...tokens] = r;
    return {
      type: 'leased',
      due: Number(due) === 1,
      leases: ranges.map((range, i) => ({
        token: Number(tokens[i]),
        attempt: 1,
        runId: String(runId),
        range,
        owner,
        deadline: Number(deadline),
      })),
    };
  }

  async heartbeat({
    owner,
    tokens,
    leaseMs,
  }: HeartbeatOptions): Promise<number[]> {
    const lost: Raw = await this.run(
      scripts.heartbeat,
      owner,
      leaseMs,
      ...tokens,
    );
    return lost.map(Number);
  }

  async complete({ owner, tokens }: LeaseTokens): Promise<boolean[]> {
    if (tokens.length === 0) return [];
    const counted: Raw = await this.run(scripts.complete, owner, ...tokens);
    return counted.map((c) => Number(c) === 1);
  }

  async fail(o: FailOptions): Promise<'retry' | 'dead' | 'stale'> {
    const { owner, token } = o;
    // Part of the range failed: the range of those ids is built here (cjson would round long numeric ids); the token fences it.
    // Split: its halves are built here too, never re-encoded in Lua.
    const splitting = o.split && !o.dead;
    let part = '';
    let halves: string[] = ['', 0, '', 0].map(String);
    if (o.ids || splitting) {
      const leased = await this.redis.client.hget(
        this.key('leases'),
        `${token}:r`,
      );
      if (leased === null) return 'stale';
      const range = JSON.parse(leased) as StoredRange;
      const failed = o.ids ? { ...range, ids: o.ids } : range;
      if (o.ids) part = JSON.stringify(failed);
      const split = splitting && splitRange(failed);
      if (split)
        halves = split.flatMap((h) => [
          JSON.stringify(h),
          String(h.ids.length),
        ]);
    }
    return this.run(
      scripts.fail,
      owner,
      token,
      o.dead ? '1' : '0',
      o.retryInMs,
      JSON.stringify(o.error),
      part,
      o.ids?.length ?? 0,
      ...halves,
    );
  }

  async release({ owner, tokens }: LeaseTokens): Promise<void> {
    if (tokens.length) await this.run(scripts.release, owner, ...tokens);
  }

  async leave({ owner }: LeaveOptions): Promise<void> {
    await this.run(scripts.leave, owner);
  }

  async endRun({ runId, state, error }: EndRunOptions): Promise<void> {
    await this.run(scripts.endRun, runId, state, error ?? '');
  }

  async takePermits({
    wanted,
    perSecond,
  }: TakePermitsOptions): Promise<{ granted: number; waitMs: number }> {
    const [granted, waitMs]: Raw = await this.run(
      scripts.takePermits,
      wanted,
      perSecond,
    );
    return { granted: Number(granted), waitMs: Number(waitMs) };
  }

  async control({
    action,
    declaredBy,
  }: ControlOptions): Promise<string | null> {
    const job = this.name;
    const runId = allowed(
      job,
      await this.run(scripts.control, action, declaredBy ?? ''),
      declaredBy,
      action,
    );
    return runId ? String(runId) : null;
  }

  async reset({ declaredBy }: DeclaredBy = {}): Promise<void> {
    const job = this.name;
    const [answer, runId] = allowed(
      job,
      await this.run(scripts.reset, declaredBy ?? ''),
      declaredBy,
      'reset',
    );
    if (answer === 'busy')
      throw new RunRefusedError(job, RESET_BUSY(String(runId)));
  }

  async setTotal({ runId, total }: SetTotalOptions): Promise<void> {
    await this.run(scripts.setTotal, runId, total);
  }

  async countWorkers({
    runId,
    started,
    restarted,
  }: CountWorkersOptions): Promise<void> {
    await this.run(scripts.countWorkers, runId, started, restarted);
  }

  async hold({ runId, reason, indicator, holdMs }: HoldOptions): Promise<void> {
    await this.run(scripts.hold, runId, reason, indicator, wholeMs(holdMs));
  }

  async healthTurn({ runId, intervalMs }: HealthTurnOptions): Promise<boolean> {
    return (
      Number(await this.run(scripts.healthTurn, runId, wholeMs(intervalMs))) ===
      1
    );
  }

  async state({ declaredBy }: DeclaredBy = {}): Promise<StoreRunState> {
    const job = this.name;
    const [flat, leased, retrying, dead, now, flatParts, active]: [
      string[],
      number,
      number,
      number,
      number,
      string[],
      number,
    ] = allowed(
      job,
      await this.run(scripts.state, declaredBy ?? ''),
      declaredBy,
      'status',
    );
    const h: Record<string, string> = {};
    for (let i = 0; i < flat.length; i += 2) h[flat[i]] = flat[i + 1];
    const n = (k: string) => Number(h[k] ?? 0);
    const partitions = parsePartitions(flatParts);
    return {
      runId: h.runId || null,
      state: (h.state as StoreRunState['state']) || 'idle',
      control: h.control === 'pause' ? 'pause' : 'run',
      ...(h.total ? { total: Number(h.total) } : {}),
      ...(h.lost
        ? { error: STATE_LOST_PART(job, h.runId || null, h.lost) }
        : h.error
          ? { error: h.error }
          : {}),
      ...(h.params !== undefined && { params: h.params }),
      ...(h.startedBy !== undefined && { startedBy: h.startedBy }),
      ...(h.startedOn !== undefined && { startedOn: h.startedOn }),
      cursor: h.cursor ? JSON.parse(h.cursor) : null,
      // With partitions, loading is exhausted once every partition is.
      exhausted: partitions
        ? partitions.every((p) => p.exhausted)
        : h.exhausted === '1',
      ...(partitions && { partitions }),
      counters: {
        ids: n('ids'),
        completed: n('completed'),
        retried: n('retried'),
        dead: n('dead'),
        workersStarted: n('workersStarted'),
        workersRestarted: n('workersRestarted'),
      },
      leased: Number(leased),
      active: h.state === 'running' && Number(active) === 1,
      retrying: Number(retrying),
      dead: Number(dead),
      startedAt: h.startedAt ? Number(h.startedAt) : null,
      endedAt: h.endedAt ? Number(h.endedAt) : null,
      now: Number(now),
      ...(h.previousRunId && {
        previous: {
          runId: h.previousRunId,
          state: h.previousState as PreviousRun['state'],
          ...(h.previousError && { error: h.previousError }),
        },
      }),
      ...holdView(
        {
          ...(h.holdUntil && {
            hold: {
              reason: h.holdReason,
              indicator: h.holdIndicator,
              since: Number(h.holdSince),
              until: Number(h.holdUntil),
            },
          }),
          heldMs: n('heldMs'),
          endedAt: h.endedAt ? Number(h.endedAt) : null,
        },
        Number(now),
      ),
    };
  }

  async retryDead({
    declaredBy,
    only,
  }: RetryDeadOptions = {}): Promise<number> {
    const job = this.name;
    // Parsed here, not in Lua: cjson would round long numeric ids.
    const entries = await this.readDead(0, -1, declaredBy, 'retryDead');
    let moved = 0;
    for (const entry of entries) {
      const letter = JSON.parse(entry) as DeadLetter;
      // The script removes the exact entry: a letter someone retried meanwhile answers 0, never another one.
      if (only && !isLetter(letter, only)) continue;
      const { range } = letter;
      moved += Number(
        allowed(
          job,
          await this.run(
            scripts.requeueDead,
            entry,
            JSON.stringify(range),
            range.ids.length,
            declaredBy ?? '',
          ),
          declaredBy,
          'retryDead',
        ),
      );
    }
    return moved;
  }

  /** The dead letters' entries from `start` to `stop`, as stored. */
  private async readDead(
    start: number,
    stop: number,
    declaredBy: string | undefined,
    call: string,
  ): Promise<string[]> {
    const [, entries]: [string, string[]] = allowed(
      this.name,
      await this.run(scripts.readDead, declaredBy ?? '', start, stop),
      declaredBy,
      call,
    );
    return entries;
  }

  /** Live leases per host (owner), for the CLI's view. */
  async leasesByOwner({ declaredBy }: DeclaredBy = {}): Promise<
    Record<string, number>
  > {
    const job = this.name;
    // Only the small `<token>:m` fields travel, never the ranges' ids (a dashboard asks every second).
    // HSCAN may return a field twice: each lease counts once.
    const seen = new Map<string, string>();
    let cursor = '0';
    do {
      const [, next, flat]: [string, string, string[]] = allowed(
        job,
        await this.run(scripts.leaseOwners, declaredBy ?? '', cursor),
        declaredBy,
        'leasesByHost',
      );
      for (let i = 0; i + 1 < flat.length; i += 2)
        seen.set(flat[i], (JSON.parse(flat[i + 1]) as { o: string }).o);
      cursor = next;
    } while (cursor !== '0');
    const owners: Record<string, number> = {};
    for (const owner of seen.values()) owners[owner] = (owners[owner] ?? 0) + 1;
    return owners;
  }

  async deadLetters(options?: DeadLettersOptions): Promise<DeadLetter[]> {
    const page = pageOf(options);
    // An empty page is still checked: another app learns nothing of the job, not even that it holds nothing.
    const [start, stop] = !page
      ? [0, -1]
      : page.limit <= 0
        ? [1, 0]
        : [page.offset, page.offset + page.limit - 1];
    const entries = await this.readDead(
      start,
      stop,
      options?.declaredBy,
      'deadLetters',
    );
    return entries.map((s) => JSON.parse(s) as DeadLetter);
  }

  async recordRun({ record, keep }: RecordRunOptions): Promise<void> {
    await this.run(
      scripts.recordRun,
      record.runId,
      record.status,
      JSON.stringify(record),
      Math.max(0, keep),
    );
  }

  async history({ limit, declaredBy }: HistoryOptions): Promise<RunRecord[]> {
    const job = this.name;
    const [, records]: [string, (string | null)[]] = allowed(
      job,
      await this.run(scripts.readHistory, declaredBy ?? '', Math.max(1, limit)),
      declaredBy,
      'history',
    );
    if (limit <= 0) return [];
    return records
      .filter((r): r is string => r !== null)
      .map((r) => JSON.parse(r) as RunRecord);
  }
}
