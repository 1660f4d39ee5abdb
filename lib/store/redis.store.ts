import { createHash } from 'node:crypto';
import type {
  RedisConnectionOptions,
  RedisLikeClient,
} from '../interfaces/parallel-worker-options.interface';
import { describeRedis } from './owned-redis';
import type { ID } from '../interfaces/range.interface';
import type {
  Claim,
  CommitResult,
  CoordinationStore,
  DeadLetter,
  FailOptions,
  Lease,
  PartitionBounds,
  PreviousRun,
  RunRecord,
  RunStart,
  StartRunResult,
  StoreRunState,
  StoredPartition,
  StoredRange,
} from './coordination-store.interface';
import { RunRefusedError } from '../errors/run-refused.error';
import {
  JOB_DECLARED_ELSEWHERE,
  REDIS_EVICTS,
  RESET_BUSY,
  RUN_BUSY,
  STATE_LOST_PART,
} from '../parallel-worker.messages';
import type { ModuleLogger } from '../parallel-worker.logger';
import { CLAIM } from './redis/claim.lua';
import { COMMIT } from './redis/commit.lua';
import { CONTROL } from './redis/control.lua';
import { COUNT_WORKERS } from './redis/count-workers.lua';
import { END_RUN } from './redis/end-run.lua';
import { RESET } from './redis/reset.lua';
import { SET_TOTAL } from './redis/set-total.lua';
import { STATE } from './redis/state.lua';
import { TAKE_PERMITS } from './redis/take-permits.lua';
import { JOB_KEYS, type JobKey } from './redis/keys';
import { COMPLETE } from './redis/complete.lua';
import { FAIL } from './redis/fail.lua';
import { HEARTBEAT } from './redis/heartbeat.lua';
import { LEAVE } from './redis/leave.lua';
import { RELEASE } from './redis/release.lua';
import { RECORD_RUN } from './redis/record-run.lua';
import { REQUEUE_DEAD } from './redis/requeue-dead.lua';
import { START_RUN } from './redis/start-run.lua';
import { READ_DEAD } from './redis/read-dead.lua';
import { READ_HISTORY } from './redis/read-history.lua';
import { LEASE_OWNERS } from './redis/lease-owners.lua';
import { refuseOtherApp } from './declaration';
import { redactSecrets } from '../redact-secrets';

/** The ioredis calls the store makes; `Redis` and `Cluster` both have them. */
interface Client {
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

/** An app's ioredis client as `Redis at host:port` (its options; never credentials). */
function describeClient(client: unknown): string {
  const c = client as {
    options?: RedisConnectionOptions;
    startupNodes?: unknown[];
  };
  if (Array.isArray(c.startupNodes)) {
    const nodes = c.startupNodes.map((n) =>
      typeof n === 'object' && n
        ? `${(n as { host?: string }).host ?? '127.0.0.1'}:${(n as { port?: number }).port ?? 6379}`
        : String(n),
    );
    return redactSecrets(`Redis Cluster at ${nodes.join(',')}`);
  }
  return describeRedis(c.options ?? {});
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

/**
 * Coordination in Redis, for any number of hosts: every read-and-write is one
 * Lua script on keys sharing the hash tag `{<storageKey>:<job>}`, with time
 * from Redis `TIME`. Scripts run by SHA and are sent again when Redis lost
 * its script cache (a restart, SCRIPT FLUSH). The client is the user's and
 * is never closed here.
 */
export class RedisStore implements CoordinationStore {
  private readonly client: Client;

  /** Where the client points, without credentials. */
  readonly where: string;

  /**
   * `own`: the client is the module's (made from a URL or options), so
   * `close()` closes it; otherwise it is the app's and stays open.
   */
  constructor(
    client: RedisLikeClient,
    private readonly prefix: string,
    private readonly own?: {
      where: string;
      close(): Promise<void>;
      problem(): string | undefined;
    },
    /** Where the warning about an evicting Redis goes (once, at the first run this store starts). */
    private readonly logger?: ModuleLogger,
  ) {
    this.client = client as unknown as Client;
    this.where = own?.where ?? describeClient(client);
  }

  /** Why the module's own client cannot reach Redis now, if it cannot. */
  problem(): string | undefined {
    return this.own?.problem();
  }

  async close(): Promise<void> {
    await this.own?.close();
  }

  private evictionChecked = false;

  /**
   * Warns when Redis may evict keys of a running job: with an allkeys-*
   * policy any key may go; volatile-* ones evict only keys with a TTL, and
   * this store sets none. Managed Redis often refuses CONFIG: then nothing
   * is known, and only a debug line says so.
   */
  private async warnIfEvicting(): Promise<void> {
    if (this.evictionChecked || !this.logger) return;
    this.evictionChecked = true;
    try {
      const nodes = this.client.nodes
        ? this.client.nodes('master')
        : [this.client];
      const policies = new Set<string>();
      for (const node of nodes) {
        const answer = (await (node as Client).config(
          'GET',
          'maxmemory-policy',
        )) as string[];
        if (answer?.[1]) policies.add(answer[1]);
      }
      for (const policy of policies)
        if (policy.startsWith('allkeys-'))
          this.logger.warn(REDIS_EVICTS(this.where, policy));
    } catch (e) {
      this.logger.debug(
        `${this.where} did not tell its maxmemory-policy (${(e as Error).message}); state lost to eviction is still detected.`,
      );
    }
  }

  private readonly jobKeys = new Map<string, string[]>();

  /** The job's keys in JOB_KEYS order: the KEYS of every script. */
  private keys(job: string): string[] {
    let keys = this.jobKeys.get(job);
    if (!keys) {
      const tag = `{${this.prefix}:${job}}`;
      keys = JOB_KEYS.map((k) => `${tag}:${k}`);
      this.jobKeys.set(job, keys);
    }
    return keys;
  }

  private key(job: string, name: JobKey): string {
    return this.keys(job)[JOB_KEYS.indexOf(name)];
  }

  private async run(
    script: Script,
    job: string,
    ...args: (string | number)[]
  ): Promise<any> {
    const keys = this.keys(job);
    try {
      return await this.client.evalsha(
        script.sha,
        keys.length,
        ...keys,
        ...args,
      );
    } catch (e) {
      if (!String((e as Error).message).includes('NOSCRIPT')) throw e;
      return this.client.eval(script.lua, keys.length, ...keys, ...args);
    }
  }

  async startRun(
    job: string,
    runId: string,
    from?: ID | null,
    declaredBy?: string,
    partitions?: PartitionBounds[],
    start?: RunStart,
    plannedFrom?: ID | null,
  ): Promise<StartRunResult> {
    void this.warnIfEvicting();
    // The start fields given, as name and value pairs for the meta hash.
    const fields = Object.entries({
      params: start?.params,
      startedBy: start?.startedBy,
      startedOn: start?.host,
    }).filter(([, v]) => v !== undefined) as [string, string][];
    const [id, value, params] = await this.run(
      scripts.startRun,
      job,
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

  async claim(
    job: string,
    owner: string,
    leaseMs: number,
    request?: string,
    loading?: number[],
  ): Promise<Claim> {
    const r: Raw = await this.run(
      scripts.claim,
      job,
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

  async commit(
    job: string,
    owner: string,
    expected: ID | null,
    ranges: StoredRange[],
    leaseMs: number,
    request?: string,
    partition?: number,
  ): Promise<CommitResult> {
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
    const r: Raw = await this.run(scripts.commit, job, ...args);
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

  async heartbeat(
    job: string,
    owner: string,
    tokens: number[],
    leaseMs: number,
  ): Promise<number[]> {
    const lost: Raw = await this.run(
      scripts.heartbeat,
      job,
      owner,
      leaseMs,
      ...tokens,
    );
    return lost.map(Number);
  }

  async complete(
    job: string,
    owner: string,
    tokens: number[],
  ): Promise<boolean[]> {
    if (tokens.length === 0) return [];
    const counted: Raw = await this.run(
      scripts.complete,
      job,
      owner,
      ...tokens,
    );
    return counted.map((c) => Number(c) === 1);
  }

  async fail(
    job: string,
    owner: string,
    token: number,
    o: FailOptions,
  ): Promise<'retry' | 'dead' | 'stale'> {
    // Part of the range failed: the range of those ids is built here (cjson would round long numeric ids); the token fences it.
    let part = '';
    if (o.ids) {
      const leased = await this.client.hget(
        this.key(job, 'leases'),
        `${token}:r`,
      );
      if (leased === null) return 'stale';
      part = JSON.stringify({ ...JSON.parse(leased), ids: o.ids });
    }
    return this.run(
      scripts.fail,
      job,
      owner,
      token,
      o.dead ? '1' : '0',
      o.retryInMs,
      JSON.stringify(o.error),
      part,
      o.ids?.length ?? 0,
    );
  }

  async release(job: string, owner: string, tokens: number[]): Promise<void> {
    if (tokens.length) await this.run(scripts.release, job, owner, ...tokens);
  }

  async leave(job: string, owner: string): Promise<void> {
    await this.run(scripts.leave, job, owner);
  }

  async endRun(
    job: string,
    runId: string,
    state: 'completed' | 'failed',
    error?: string,
  ): Promise<void> {
    await this.run(scripts.endRun, job, runId, state, error ?? '');
  }

  async takePermits(
    job: string,
    wanted: number,
    perSecond: number,
  ): Promise<{ granted: number; waitMs: number }> {
    const [granted, waitMs]: Raw = await this.run(
      scripts.takePermits,
      job,
      wanted,
      perSecond,
    );
    return { granted: Number(granted), waitMs: Number(waitMs) };
  }

  async control(
    job: string,
    action: 'pause' | 'resume' | 'cancel',
    declaredBy?: string,
  ): Promise<string | null> {
    const runId = allowed(
      job,
      await this.run(scripts.control, job, action, declaredBy ?? ''),
      declaredBy,
      action,
    );
    return runId ? String(runId) : null;
  }

  async reset(job: string, declaredBy?: string): Promise<void> {
    const [answer, runId] = allowed(
      job,
      await this.run(scripts.reset, job, declaredBy ?? ''),
      declaredBy,
      'reset',
    );
    if (answer === 'busy')
      throw new RunRefusedError(job, RESET_BUSY(String(runId)));
  }

  async setTotal(job: string, runId: string, total: number): Promise<void> {
    await this.run(scripts.setTotal, job, runId, total);
  }

  async countWorkers(
    job: string,
    runId: string,
    started: number,
    restarted: number,
  ): Promise<void> {
    await this.run(scripts.countWorkers, job, runId, started, restarted);
  }

  async state(job: string, declaredBy?: string): Promise<StoreRunState> {
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
      await this.run(scripts.state, job, declaredBy ?? ''),
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
    };
  }

  async retryDead(job: string, declaredBy?: string): Promise<number> {
    // Parsed here, not in Lua: cjson would round long numeric ids.
    const entries = await this.readDead(job, 0, -1, declaredBy, 'retryDead');
    let moved = 0;
    for (const entry of entries) {
      const { range } = JSON.parse(entry) as DeadLetter;
      moved += Number(
        allowed(
          job,
          await this.run(
            scripts.requeueDead,
            job,
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
    job: string,
    start: number,
    stop: number,
    declaredBy: string | undefined,
    call: string,
  ): Promise<string[]> {
    const [, entries]: [string, string[]] = allowed(
      job,
      await this.run(scripts.readDead, job, declaredBy ?? '', start, stop),
      declaredBy,
      call,
    );
    return entries;
  }

  /** Live leases per host (owner), for the CLI's view. */
  async leasesByOwner(
    job: string,
    declaredBy?: string,
  ): Promise<Record<string, number>> {
    // Only the small `<token>:m` fields travel, never the ranges' ids (a dashboard asks every second).
    // HSCAN may return a field twice: each lease counts once.
    const seen = new Map<string, string>();
    let cursor = '0';
    do {
      const [, next, flat]: [string, string, string[]] = allowed(
        job,
        await this.run(scripts.leaseOwners, job, declaredBy ?? '', cursor),
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

  /** Jobs that have state under this prefix (the CLI lists them when asked for an unknown one); on a Cluster, from every master. */
  async jobs(): Promise<string[]> {
    const found = new Set<string>();
    const nodes = this.client.nodes
      ? this.client.nodes('master')
      : [this.client];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(
          cursor,
          'MATCH',
          `{${this.prefix}:*}:meta`,
          'COUNT',
          1000,
        );
        cursor = next;
        for (const key of keys)
          found.add(key.slice(this.prefix.length + 2, key.indexOf('}')));
      } while (cursor !== '0');
    }
    return [...found].sort();
  }

  async deadLetters(
    job: string,
    page?: { offset: number; limit: number },
    declaredBy?: string,
  ): Promise<DeadLetter[]> {
    // An empty page is still checked: another app learns nothing of the job, not even that it holds nothing.
    const [start, stop] = !page
      ? [0, -1]
      : page.limit <= 0
        ? [1, 0]
        : [page.offset, page.offset + page.limit - 1];
    const entries = await this.readDead(
      job,
      start,
      stop,
      declaredBy,
      'deadLetters',
    );
    return entries.map((s) => JSON.parse(s) as DeadLetter);
  }

  async recordRun(job: string, record: RunRecord, keep: number): Promise<void> {
    await this.run(
      scripts.recordRun,
      job,
      record.runId,
      record.status,
      JSON.stringify(record),
      Math.max(0, keep),
    );
  }

  async history(
    job: string,
    limit: number,
    declaredBy?: string,
  ): Promise<RunRecord[]> {
    const [, records]: [string, (string | null)[]] = allowed(
      job,
      await this.run(
        scripts.readHistory,
        job,
        declaredBy ?? '',
        Math.max(1, limit),
      ),
      declaredBy,
      'history',
    );
    if (limit <= 0) return [];
    return records
      .filter((r): r is string => r !== null)
      .map((r) => JSON.parse(r) as RunRecord);
  }
}
