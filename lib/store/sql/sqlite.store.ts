import { SqlStore } from './sql.store';
import { SqliteDialect } from './sqlite.dialect';

/**
 * Coordination state in a SQLite file (`storage: 'sqlite:<path>'`): every
 * process of the host can use it at once (two primaries on one machine work on
 * one job together like two hosts), and the state outlives every process, so
 * runs resume after any crash or restart. Needs Node 22.13 or later
 * (`node:sqlite`). The file and its tables are created on first use; keep it
 * out of version control.
 */
export class SqliteStore extends SqlStore {
  /**
   * `storageKey`: as the module's option; jobs of different keys share the
   * file without meeting. `busyTimeoutMs`: how long a call waits for another
   * process's write before it fails (default 5000).
   */
  constructor(
    path: string,
    options: { storageKey?: string; busyTimeoutMs?: number } = {},
  ) {
    super(new SqliteDialect(path, options.busyTimeoutMs), options.storageKey);
  }
}
