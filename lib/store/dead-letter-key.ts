import type { DeadLetter } from './coordination-store.interface';
import type { DeadLetterKey } from './job-store.interface';

/** Whether `letter` is the one `key` names (its run, and its first id compared as text). */
export const isLetter = (
  letter: Pick<DeadLetter, 'runId' | 'range'>,
  key: DeadLetterKey,
): boolean =>
  letter.runId === key.runId &&
  letter.range.ids.length > 0 &&
  String(letter.range.ids[0]) === String(key.firstId);
