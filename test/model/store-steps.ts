import type { ID, StoredRange } from '../../lib';
import { InvalidRangeError, RunRefusedError } from '../../lib';
import {
  LEASE_MS,
  OTHER_APP,
  OUR_APP,
  refusedForLostState,
  type StoreUnderTest,
} from './store-adapter';
import {
  answeredDone,
  call,
  canApply,
  check,
  type Fate,
  fail,
  gapIn,
  type Host,
  keyOf,
  lossReported,
  Model,
  type OtherAppCall,
  onReset,
  started,
  startedAgain,
  type Step,
  TABLE,
  takeToken,
} from './store-model';

/**
 * The steps of the model test: each a store call of one of the app's hosts,
 * a fault or another app's call, run against the store and the model, with
 * the model's checks after it (store-model.ts).
 */

/** The loader: ids after the cursor, in the partition, in ranges of these sizes. */
function load(
  cursor: ID | null | undefined,
  upTo: ID | null,
  sizes: number[],
): StoredRange[] {
  let after = cursor ?? null;
  const ranges: StoredRange[] = [];
  for (const size of sizes) {
    const ids = TABLE.filter(
      (id) =>
        (after === null || id > Number(after)) &&
        (upTo === null || id <= Number(upTo)),
    ).slice(0, size);
    if (!ids.length) break;
    ranges.push({ ids, lastId: ids[ids.length - 1], prev: after });
    after = ids[ids.length - 1];
  }
  return ranges;
}

function leased(
  m: Model,
  owner: string,
  token: number,
  ids: number[],
  runId: string,
): void {
  takeToken(m, token);
  m.leases.push({
    token,
    owner,
    ids,
    key: keyOf(ids),
    deadline: m.now + LEASE_MS,
    runId,
  });
  for (const id of ids)
    if (m.fates.get(id) !== 'done') m.fates.set(id, 'loaded');
}

async function claim(
  m: Model,
  sut: StoreUnderTest,
  host: Host,
): Promise<string> {
  const got = await call(m, sut, 'claim', () => sut.claim(m.owner(host)));
  if (!got.ok) return 'error';
  const answer = got.value;
  switch (answer.type) {
    case 'lease': {
      const ids = answer.lease.range.ids as number[];
      const key = keyOf(ids);
      if (answer.reason === 'expired') {
        let taken = m.leases.findIndex((l) => l.key === key && !m.live(l));
        if (taken < 0) {
          taken = m.leases.findIndex((l) => l.key === key);
          // After a loss, a lease whose deadline was lost expires at once (handed out again): allowed.
          if (taken >= 0 && m.loss === 'none')
            fail(`claim took over range ${key} before its lease expired`);
        }
        if (taken >= 0) m.leases.splice(taken, 1);
      } else {
        const waiting = m.pending.findIndex((p) => p.key === key);
        if (waiting >= 0) m.pending.splice(waiting, 1);
      }
      leased(m, m.owner(host), answer.lease.token, ids, answer.lease.runId);
      break;
    }
    case 'load':
      m.loads.set(host, {
        cursor: answer.cursor,
        ...(answer.partition !== undefined && { partition: answer.partition }),
      });
      break;
    case 'done':
      await answeredDone(m, sut);
      break;
    case 'failed':
      if (m.loss === 'unreported') await lossReported(m, sut);
      m.running = false;
      break;
    case 'cancelled':
      m.running = false;
      break;
  }
  return answer.type;
}

async function commit(
  m: Model,
  sut: StoreUnderTest,
  host: Host,
  sizes: number[],
): Promise<void> {
  const at = m.loads.get(host) as { cursor: ID | null; partition?: number };
  m.loads.delete(host);
  let upTo: ID | null = null;
  if (at.partition !== undefined) {
    const s = await call(m, sut, 'state', () => sut.state());
    if (!s.ok) return;
    upTo = s.value.partitions?.[at.partition]?.upTo ?? null;
  }
  const ranges = load(at.cursor, upTo, sizes);
  const got = await call(m, sut, 'commit', () =>
    sut.commit(m.owner(host), at.cursor, ranges, at.partition),
  );
  if (!got.ok || got.value.type !== 'leased') return;
  for (const lease of got.value.leases)
    leased(
      m,
      m.owner(host),
      lease.token,
      lease.range.ids as number[],
      lease.runId,
    );
}

async function complete(
  m: Model,
  sut: StoreUnderTest,
  host: Host,
  which: number | 'all',
): Promise<void> {
  const mine = m
    .leasesOf(host)
    .filter((l) => m.live(l) || !m.without.includes('expiredComplete'));
  if (!mine.length) return;
  const chosen = which === 'all' ? mine : [mine[which % mine.length]];
  const got = await call(m, sut, 'complete', () =>
    sut.complete(
      m.owner(host),
      chosen.map((l) => l.token),
    ),
  );
  if (!got.ok) return;
  chosen.forEach((l, i) => {
    if (!got.value[i]) {
      if (m.live(l) && m.loss === 'none')
        fail(
          `complete refused lease ${l.token} (${l.key}) that its host still held`,
        );
      return;
    }
    if (!m.live(l) && m.loss !== 'reported')
      fail(
        `complete counted lease ${l.token} (${l.key}) as done past its deadline: its handler's lease had expired`,
      );
    m.leases.splice(m.leases.indexOf(l), 1);
    m.setFates(l.ids, 'done');
    if (l.runId === m.runId) {
      m.completedInRun++;
      m.idsInRun += l.ids.length;
    }
  });
}

async function failLease(
  m: Model,
  sut: StoreUnderTest,
  step: Extract<Step, { do: 'fail' }>,
): Promise<void> {
  const mine = m.leasesOf(step.host);
  const l = mine[step.lease % mine.length];
  const got = await call(m, sut, 'fail', () =>
    sut.fail(l.owner, l.token, {
      error: { message: 'handler failed' },
      dead: step.dead,
      retryInMs: step.retryInMs,
    }),
  );
  if (!got.ok) return;
  if (got.value === 'stale') {
    if (m.live(l) && m.loss === 'none')
      fail(
        `fail answered stale for lease ${l.token} (${l.key}) that its host still held`,
      );
    return;
  }
  m.leases.splice(m.leases.indexOf(l), 1);
  if (got.value === 'dead') {
    m.dead.push({ ids: l.ids, key: l.key });
    m.setFates(l.ids, 'dead');
  } else m.pending.push({ ids: l.ids, key: l.key });
}

async function heartbeat(
  m: Model,
  sut: StoreUnderTest,
  host: Host,
): Promise<void> {
  const mine = m.leasesOf(host);
  const got = await call(m, sut, 'heartbeat', () =>
    sut.heartbeat(
      m.owner(host),
      mine.map((l) => l.token),
    ),
  );
  if (!got.ok) return;
  for (const l of mine) {
    if (!got.value.includes(l.token)) l.deadline = m.now + LEASE_MS;
    else if (m.live(l) && m.loss === 'none')
      fail(
        `heartbeat said lease ${l.token} (${l.key}) was lost while its host held it`,
      );
  }
}

async function advance(
  m: Model,
  sut: StoreUnderTest,
  ms: number,
): Promise<void> {
  m.now += ms;
  await sut.advance(ms);
}

/** Every host of this process is gone; their leases stay in the store to expire. */
function processGone(m: Model): void {
  m.generation.a++;
  m.generation.b++;
  m.joined.clear();
  m.loads.clear();
}

async function restartProcess(m: Model, sut: StoreUnderTest): Promise<void> {
  await sut.restart();
  m.now += 1000;
  processGone(m);
  if (m.kind !== 'memory') return;
  // The memory store forgets everything with its process, by design; only tokens must still go up.
  Object.assign(m, {
    runId: null,
    running: false,
    declared: false,
    leases: [],
    pending: [],
    dead: [],
    loss: 'none',
  });
  m.setFates([...TABLE], 'todo');
}

async function otherApp(
  m: Model,
  sut: StoreUnderTest,
  what: OtherAppCall,
): Promise<void> {
  const snapshot = async () => {
    const { now: _now, ...s } = await sut.observe();
    return JSON.stringify(s);
  };
  const before = await snapshot();
  let refused = false;
  try {
    if (what === 'startRun')
      await sut.startRun('other-run', undefined, OTHER_APP);
    else if (what === 'reset') await sut.reset(OTHER_APP);
    else if (what === 'retryDead') await sut.retryDead(OTHER_APP);
    else await sut.control(what, OTHER_APP);
  } catch (e) {
    if (!(e instanceof RunRefusedError))
      fail(
        `another app's ${what} threw ${(e as Error).message}, not RunRefusedError`,
      );
    refused = true;
  }
  const changed = (await snapshot()) !== before;
  if (!refused || changed)
    fail(
      `another app's ${what} was ${refused ? 'refused' : 'not refused'} and ${changed ? 'changed' : 'did not change'} this app's job`,
    );
}

/** The last id before which every id was handled (done or dead-lettered), as the user's own records tell it. */
function handledUpTo(m: Model): number | null {
  let upTo: number | null = null;
  for (const id of TABLE) {
    if (!['done', 'dead'].includes(m.fates.get(id) as Fate)) break;
    upTo = id;
  }
  return upTo;
}

/**
 * A start refused: when for state lost, the user starts the job again as the
 * error says, `from` the last id before which every id was handled.
 */
async function refusedStart(
  m: Model,
  sut: StoreUnderTest,
  step: Extract<Step, { do: 'startRun' | 'startPlannedRun' }>,
  refused: Error | undefined,
): Promise<void> {
  // `from` after a reported loss while the failed run's hosts have not left: the user waits for them, as the error says.
  if (
    step.from !== undefined &&
    m.loss === 'reported' &&
    /is active/.test(refused?.message ?? '')
  ) {
    await advance(m, sut, LEASE_MS + 5000);
    return run(m, sut, step);
  }
  if (!refusedForLostState(refused) || step.from !== undefined) return;
  if (m.loss === 'none')
    fail(
      `startRun was refused for state lost with nothing lost: ${refused?.message}`,
    );
  await lossReported(m, sut);
  const from = handledUpTo(m);
  await run(
    m,
    sut,
    step.do === 'startRun'
      ? { ...step, from }
      : { ...step, from, resetBetween: false },
  );
}

/** A new host a works until the store answers done, starting a run when none is going on; the old host a's leases are left to expire. */
async function drain(m: Model, sut: StoreUnderTest): Promise<void> {
  await run(m, sut, { do: 'hostDies', host: 'a' });
  let newRun = false;
  for (let i = 0; i < 200; i++) {
    // A run that failed for state lost is started again (see refusedStart) and drained too.
    if (!m.running && newRun && m.loss !== 'reported') return;
    if (!m.running || !m.joined.has('a')) {
      newRun ||= !m.running;
      await apply(m, sut, { do: 'startRun', host: 'a' });
    } else if (m.leasesOf('a').length)
      await apply(m, sut, { do: 'complete', host: 'a', lease: 'all' });
    else if (m.loads.has('a'))
      await apply(m, sut, { do: 'commit', host: 'a', sizes: [5, 5, 5] });
    else if ((await claim(m, sut, 'a')) === 'wait')
      await advance(m, sut, LEASE_MS + 5000);
    await check(m, sut);
  }
  if (m.loss === 'reported')
    fail('the job was not started again after its state was reported lost');
  if (m.running && m.loss === 'none')
    fail('the run did not end after 200 rounds of claims');
}

/** Runs one step and checks the invariants after it. */
export async function apply(
  m: Model,
  sut: StoreUnderTest,
  step: Step,
): Promise<void> {
  await run(m, sut, step);
  await check(m, sut);
}

async function run(m: Model, sut: StoreUnderTest, step: Step): Promise<void> {
  switch (step.do) {
    case 'startRun': {
      const runId = `run-${++m.runs}`;
      const got = await call(m, sut, 'startRun', () =>
        sut.startRun(runId, step.from, OUR_APP),
      );
      if (got.ok) await started(m, sut, step.host, got.value, step.from);
      else await refusedStart(m, sut, step, got.refused);
      return;
    }
    case 'startPlannedRun': {
      const runId = `run-${++m.runs}`;
      let reset = false;
      const got = await call(m, sut, 'startRun with a partition plan', () =>
        sut.startPlannedRun(runId, step.from, step.plan, async () => {
          if (!step.resetBetween) return;
          try {
            await sut.reset(OUR_APP);
            reset = true;
          } catch (e) {
            if (!(e instanceof RunRefusedError)) throw e;
          }
        }),
      );
      if (reset) onReset(m);
      const gap = gapIn(step.plan);
      if (got.ok) {
        if (gap && sut.planAsked)
          fail(
            `a planned start with a gap between its partitions (${gap}) was not refused`,
          );
        await started(m, sut, step.host, got.value, step.from);
        return;
      }
      if (got.refused instanceof InvalidRangeError) {
        if (!gap || !got.refused.message.includes('gap'))
          fail(
            `a planned start was refused for its plan ${JSON.stringify(step.plan)}: ${got.refused.message}`,
          );
        m.gapsRefused++;
        return;
      }
      await refusedStart(m, sut, step, got.refused);
      return;
    }
    case 'claim':
      await claim(m, sut, step.host);
      return;
    case 'commit':
      return commit(m, sut, step.host, step.sizes);
    case 'complete':
      return complete(m, sut, step.host, step.lease);
    case 'fail':
      return failLease(m, sut, step);
    case 'release': {
      const live = m.leasesOf(step.host).filter((l) => m.live(l));
      const got = await call(m, sut, 'release', () =>
        sut.release(
          m.owner(step.host),
          live.map((l) => l.token),
        ),
      );
      if (!got.ok) return;
      for (const l of live) {
        m.leases.splice(m.leases.indexOf(l), 1);
        m.pending.push({ ids: l.ids, key: l.key });
      }
      return;
    }
    case 'heartbeat':
      return heartbeat(m, sut, step.host);
    case 'timePasses':
      return advance(m, sut, 7000);
    case 'leasesExpire':
      return advance(m, sut, LEASE_MS + 5000);
    case 'hostStalls': {
      const other: Host = step.host === 'a' ? 'b' : 'a';
      for (let i = 0; i < 5; i++) {
        if (m.leasesOf(other).length) await heartbeat(m, sut, other);
        await advance(m, sut, 7000);
      }
      return;
    }
    case 'hostDies':
      m.generation[step.host]++;
      m.joined.delete(step.host);
      m.loads.delete(step.host);
      return;
    case 'restartProcess':
      return restartProcess(m, sut);
    case 'loseState': {
      const lost = await sut.lose(step.part);
      if (m.kind === 'key-value') {
        m.now += 1000;
        processGone(m);
      }
      if (lost) {
        if (m.loss === 'none') m.loss = 'unreported';
        m.declared = false;
      }
      return;
    }
    case 'reset': {
      const got = await call(m, sut, 'reset', () => sut.reset(OUR_APP));
      if (!got.ok) return;
      onReset(m);
      await startedAgain(m, sut);
      return;
    }
    case 'cancel': {
      const got = await call(m, sut, 'cancel', () =>
        sut.control('cancel', OUR_APP),
      );
      if (!got.ok) return;
      if (m.running && m.loss === 'none' && got.value !== m.runId)
        fail(`cancel answered ${got.value} while run ${m.runId} was going on`);
      if (got.value !== null && got.value === m.runId) {
        m.running = false;
        m.joined.clear();
        m.loads.clear();
      }
      return;
    }
    case 'retryDead': {
      const got = await call(m, sut, 'retryDead', () => sut.retryDead(OUR_APP));
      if (!got.ok) return;
      if (m.loss === 'none' && got.value !== m.dead.length)
        fail(`retryDead moved ${got.value} dead letters, not ${m.dead.length}`);
      for (const d of m.dead) m.setFates(d.ids, 'loaded');
      m.pending.push(...m.dead);
      m.dead = [];
      return;
    }
    case 'otherApp':
      return otherApp(m, sut, step.call);
    case 'drain':
      return drain(m, sut);
  }
}

/** Replays a sequence against a fresh store of this kind; throws the first invariant broken. */
export async function replay(
  sut: StoreUnderTest,
  steps: Step[],
  m: Model = new Model(sut.kind),
): Promise<void> {
  for (const step of steps) if (canApply(m, step)) await apply(m, sut, step);
}
