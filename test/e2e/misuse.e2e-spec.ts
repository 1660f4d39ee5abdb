import { startFixture } from '../support/fixture';
import { testPorts } from '../support/ports';
import { createPgItems, DATABASE_URL, dropPgTable } from '../support/postgres';

/** A main.ts without the worker branch: the run fails at once, saying what main.ts must do. */
describe('a main.ts that never serves in its workers (e2e)', () => {
  const tables: string[] = [];
  afterAll(async () => {
    for (const t of tables) await dropPgTable(t);
  });

  const run = async (how: 'listen' | 'idle') => {
    const table = await createPgItems(2_000);
    tables.push(table);
    return startFixture({
      DATABASE_URL,
      FIXTURE_TABLE: table,
      FIXTURE_NO_WORKER_BRANCH: how,
      FIXTURE_PORT: testPorts(1),
      FIXTURE_WORKERS: 2,
      FIXTURE_MAX_RESTARTS: 10,
    }).exited;
  };

  it('an HTTP-style app whose workers listen on the primary port: the run fails at the first exit, naming the fix', async () => {
    const result = await run('listen');
    expect(result.code).toBe(1);
    expect(result.failed?.message).toContain(
      'started the app but exited before serving any range: its main.ts does not call ParallelWorker.run() in workers',
    );
    expect(result.failed?.message).toContain(
      'if (ParallelWorker.isWorker()) { await app.get(ParallelWorker).run(); return app.close(); }',
    );
    expect(result.failed?.message).toContain('listen()');
    // Not replaced worker after worker until the restart cap: the first exit says it.
    expect(result.output).not.toContain('starting a replacement');
    expect(result.failed?.summary.ids).toBe(0);
  });

  it('a script whose workers do other work and never call run(): the run fails, naming the fix', async () => {
    const result = await run('idle');
    expect(result.code).toBe(1);
    expect(result.failed?.message).toContain(
      'did not call ParallelWorker.run() within 10 s before serving any range: its main.ts does not call ParallelWorker.run() in workers',
    );
    expect(result.failed?.summary.ids).toBe(0);
  });
});
