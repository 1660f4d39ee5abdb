import { renderHistory } from '../../lib/cli/history-view';
import { renderStatus } from '../../lib/cli/status-view';
import type { StoreRunState } from '../../lib/store/coordination-store.interface';

/** An error as a store may hold it: terminal escapes (7-bit and 8-bit CSI), a bell and line breaks. */
const STORED = 'db down\x1b[2J\x1b[H\x07\r\nreconnect\u009b31m failed';

const failed: StoreRunState = {
  runId: 'run-1',
  state: 'failed',
  control: 'run',
  error: STORED,
  cursor: 400,
  exhausted: false,
  counters: {
    ids: 400,
    completed: 4,
    retried: 0,
    dead: 0,
  } as StoreRunState['counters'],
  leased: 0,
  retrying: 0,
  dead: 0,
  startedAt: null,
  endedAt: null,
  now: 0,
};

describe('CLI views of stored text', () => {
  it('status prints a stored error on its line, its control characters as spaces, as history does', () => {
    const lines = renderStatus('items', failed, 0, {}).split('\n');
    expect(lines[0]).toBe(
      'job items: failed (run run-1): db down [2J [H reconnect 31m failed',
    );
    expect(lines.join('\n')).not.toMatch(
      // eslint-disable-next-line no-control-regex
      /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/,
    );
    const history = renderHistory(
      'items',
      [
        {
          runId: 'run-1',
          job: 'items',
          params: null,
          status: 'failed',
          startedBy: null,
          host: null,
          startedAt: 0,
          endedAt: 1000,
          summary: {
            job: 'items',
            runId: 'run-1',
            status: 'failed',
            ids: 0,
            ranges: { completed: 0, retried: 0, dead: 0 },
            workers: { started: 0, restarted: 0 },
            durationMs: 1000,
            heldMs: 0,
            host: { ids: 0, ranges: 0 },
          },
          deadLetters: 0,
          error: STORED.replace('\r\n', ' '),
        },
      ],
      20,
    );
    expect(history).toContain('error: db down [2J [H  reconnect 31m failed');
  });
});
