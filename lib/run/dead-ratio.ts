import type { WireError } from '../cluster/ipc.messages';
import { TOO_MANY_DEAD } from '../parallel-worker.messages';
import type { RunCounters } from '../store/coordination-store.interface';
import type { RunDeps } from './run-deps';

/** Ranges of a run that must have ended (completed or dead, all hosts) before its share of dead letters is judged. */
export const MIN_ENDED_RANGES = 20;
/** The last handler error in the message: its first line, cut to this length. */
const MAX_ERROR_LENGTH = 300;

/**
 * Judges a run by its dead letters (`maxDeadRatio`): a handler that fails
 * every row should fail the run, not dead-letter the whole table. Counts are
 * the store's, for the whole run on every host.
 */
export class DeadRatio {
  /** The last handler error that sent a range of this run to the dead letters on this host. */
  private lastError?: string;

  constructor(private readonly d: RunDeps) {}

  /** A range went to the dead letters on this host with `error`. */
  dead(error: WireError): void {
    this.lastError = firstLine(error.message);
  }

  /** Why the run fails for its dead letters, or undefined while it may go on. */
  async exceeded(counters: RunCounters): Promise<string | undefined> {
    const { job, options, store } = this.d;
    const ended = counters.completed + counters.dead;
    if (
      ended < MIN_ENDED_RANGES ||
      counters.dead <= options.maxDeadRatio * ended
    )
      return undefined;
    // Another host dead-lettered them: its newest dead letter holds the error.
    this.lastError ??= await store
      .state()
      .then((s) =>
        store.deadLetters({ offset: Math.max(0, s.dead - 1), limit: 1 }),
      )
      .then(([letter]) => letter && firstLine(letter.error.message))
      .catch(() => undefined);
    return TOO_MANY_DEAD(
      job.name,
      counters.dead,
      ended,
      options.maxDeadRatio,
      this.lastError ?? 'unknown (see deadLetters())',
    );
  }
}

const firstLine = (message: string): string => {
  const line = String(message).split('\n')[0];
  return line.length > MAX_ERROR_LENGTH
    ? `${line.slice(0, MAX_ERROR_LENGTH - 1)}…`
    : line;
};
