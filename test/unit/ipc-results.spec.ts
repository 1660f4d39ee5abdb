import { parseWorkerMessage } from '../../lib/cluster/ipc.messages';
import { RangeExecutor } from '../../lib/cluster/range-executor';
import type { JobDefinition } from '../../lib/job.registry';

const results = (entries: unknown[]) => ({
  tag: 'parallel-worker',
  type: 'results',
  results: entries,
});

/** A handler that throws `value` as the job's handler, run by the executor as a worker runs it. */
async function thrown(value: () => unknown) {
  const job = {
    name: 'items',
    handler: {
      name: 'ItemsJob.handle',
      call: async () => {
        throw value();
      },
    },
  } as unknown as JobDefinition;
  const executor = new RangeExecutor(job, { job: 'items', runId: 'r1' }, 'w-1');
  return executor.execute({ token: 7, attempt: 1, ids: [1, 2], prev: null });
}

describe('IPC results, entry by entry', () => {
  it('keeps the good results of a batch and fails only the range of a bad one', () => {
    const problems: string[] = [];
    const parsed = parseWorkerMessage(
      results([
        { token: 1, ok: true, ms: 12 },
        { token: 2, ok: false, error: { message: { code: 42 }, stack: 7 } },
        { token: 3, ok: true },
        { token: 4, ok: false, error: { message: 'boom' }, failedIds: [{}] },
        { token: 5, ok: false, error: null },
        { ok: true, ms: 1 },
        { token: 6, ok: false, error: { message: 'late', stack: 'at x' } },
      ]),
      (p) => problems.push(p),
    );
    expect(parsed).toEqual({
      tag: 'parallel-worker',
      type: 'results',
      results: [
        { token: 1, ok: true, ms: 12 },
        // Error fields that are not text are made text on receipt.
        { token: 2, ok: false, error: { message: '{ code: 42 }', stack: '7' } },
        {
          token: 3,
          ok: false,
          error: {
            message:
              'the worker sent a malformed result (has no handler time); the range is retried',
          },
        },
        {
          token: 4,
          ok: false,
          error: {
            message:
              'the worker sent a malformed result (names failed ids that are not ids); the range is retried',
          },
        },
        { token: 5, ok: false, error: { message: 'a malformed error: null' } },
        { token: 6, ok: false, error: { message: 'late', stack: 'at x' } },
      ],
    });
    expect(problems).toEqual([
      'the result for token 3 has no handler time: {"token":3,"ok":true}',
      'the result for token 4 names failed ids that are not ids: {"token":4,"ok":false,"error":{"message":"boom"},"failedIds":[{}]}',
      'a result that names no range: {"ok":true,"ms":1}',
    ]);
  });

  it('cuts a huge message and stack on receipt', () => {
    const parsed = parseWorkerMessage(
      results([
        {
          token: 1,
          ok: false,
          error: { message: 'x'.repeat(100_000), stack: 'y'.repeat(100_000) },
        },
      ]),
    );
    const [result] = parsed?.type === 'results' ? parsed.results : [];
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.message).toBe(
      `${'x'.repeat(7960)}… (92,040 more characters)`,
    );
    expect(result.error.stack).toBe(
      `${'y'.repeat(15_960)}… (84,040 more characters)`,
    );
  });
});

describe('a handler that throws something strange', () => {
  const throwingToString = {
    toString() {
      throw new Error('no');
    },
  };
  const badGetters = Object.create(Error.prototype, {
    message: {
      get() {
        throw new Error('no message for you');
      },
    },
    stack: {
      get() {
        throw new Error('no stack for you');
      },
    },
  });
  it.each([
    ['null', () => null, 'null (thrown, not an Error)'],
    ['undefined', () => undefined, 'undefined (thrown, not an Error)'],
    [
      'an object with no prototype',
      () => Object.create(null),
      '[Object: null prototype] {} (thrown, not an Error)',
    ],
    ['a Symbol', () => Symbol('odd'), 'Symbol(odd) (thrown, not an Error)'],
    [
      'an object whose toString throws',
      () => throwingToString,
      '{ toString: [Function: toString] } (thrown, not an Error)',
    ],
    ['an Error whose getters throw', () => badGetters, 'Error'],
    [
      'an Error whose message is an object',
      () => Object.assign(new Error(), { message: { code: 7 } }),
      '{ code: 7 }',
    ],
    [
      'a string holding a password',
      () => 'cannot reach redis://:hunter2@10.0.0.1:6379',
      'cannot reach redis://***@10.0.0.1:6379',
    ],
  ])('%s: a failed result with readable text', async (_, value, message) => {
    const result = await thrown(value);
    expect(result).toMatchObject({ token: 7, ok: false, error: { message } });
    if (!result.ok && result.error.stack !== undefined)
      expect(typeof result.error.stack).toBe('string');
    // It travels as JSON and is read back as it was sent.
    const parsed = parseWorkerMessage(
      JSON.parse(JSON.stringify(results([result]))),
    );
    expect(parsed).toEqual(results([result]));
  });

  it('a huge string: cut to a bounded message', async () => {
    const result = await thrown(() => 'z'.repeat(5_000_000));
    expect(!result.ok && result.error.message).toBe(
      `${'z'.repeat(7960)}… (4,992,040 more characters)`,
    );
  });
});
