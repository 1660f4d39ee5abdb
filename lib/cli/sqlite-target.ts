import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { SQLITE_BUSY_TIMEOUT_MS } from '../store/sql/sqlite.dialect';
import { SCHEMA_VERSION } from '../store/sql/sql.schema';
import { CliError } from './cli-error';

/** The file the module's SQLite store is named by default, in the app's working directory. */
export const DEFAULT_SQLITE_FILE = 'parallel-worker.db';

/** SQLite primary result codes the CLI explains (the low byte of an extended code). */
const SQLITE_BUSY = 5;
const SQLITE_READONLY = 8;
const SQLITE_CANTOPEN = 14;
const SQLITE_NOTADB = 26;

/** The node:sqlite calls used here (its types are not in every @types/node this package supports). */
interface Database {
  prepare(sql: string): { get(): Record<string, unknown> | undefined };
  close(): void;
}

/** A store file as the user named it: `flag` is how, to repeat it in every message. */
export interface SqliteTarget {
  /** Absolute path of the file. */
  path: string;
  /** `--store sqlite:<path>`, or how the default file was found. */
  flag: string;
  label: string;
}

/**
 * The SQLite file behind `--store sqlite:<path>` (or the default file), checked
 * without writing: the store itself creates a missing file and upgrades an
 * older schema, which the CLI must never do to a file an app of another
 * version uses, or to a path the user mistyped.
 */
export function sqliteTarget(value: string, flag: string): SqliteTarget {
  if (!value)
    throw new CliError(
      `${flag} names no file: give the path the app's storage option names, as in --store sqlite:./${DEFAULT_SQLITE_FILE}`,
    );
  const path = resolve(value);
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch {
    throw new CliError(
      `${flag}: there is no file ${path}. Give the path of the file the app's storage option names ('sqlite:<path>': relative there to the app's working directory, here to this one); the CLI creates no store.`,
    );
  }
  if (!isFile)
    throw new CliError(
      `${flag}: ${path} is not a file. Give the path of the SQLite file the app's storage option names.`,
    );
  const target = { path, flag, label: `SQLite file ${path}` };
  const version = schemaVersion(target);
  if (version === undefined)
    throw new CliError(
      `${flag}: ${path} holds no nestjs-parallel-worker store (a SQLite database without its tables). Give the file the app's storage option names.`,
    );
  if (version > SCHEMA_VERSION)
    throw new CliError(
      `${flag}: ${path} holds the store at schema version ${version}, newer than this nestjs-parallel-worker knows (${SCHEMA_VERSION}); nothing was changed. Run the CLI of the version the app runs (npx nestjs-parallel-worker in the app's directory), or upgrade this one.`,
    );
  if (version < SCHEMA_VERSION)
    throw new CliError(
      `${flag}: ${path} holds the store at schema version ${version}, older than this nestjs-parallel-worker's (${SCHEMA_VERSION}); using it would upgrade the file under the app, and the app would then refuse it. Run the CLI of the version the app runs (npx nestjs-parallel-worker in the app's directory).`,
    );
  return target;
}

/** The store's schema version in the file, read-only; undefined when it holds no store's tables. */
function schemaVersion(target: SqliteTarget): number | undefined {
  let DatabaseSync: new (path: string, options: object) => Database;
  try {
    /* eslint-disable-next-line @typescript-eslint/no-require-imports */
    ({ DatabaseSync } = require('node:sqlite'));
  } catch {
    throw new CliError(
      `${target.flag}: the SQLite store needs Node 22.13 or later (node:sqlite); this is Node ${process.version}. Run the CLI with a newer Node.`,
    );
  }
  let db: Database | undefined;
  try {
    db = new DatabaseSync(target.path, {
      readOnly: true,
      timeout: SQLITE_BUSY_TIMEOUT_MS,
    });
    const tables = db
      .prepare(
        "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'pw_schema'",
      )
      .get();
    if (!Number(tables?.n)) return undefined;
    return Number(
      db.prepare('SELECT version FROM pw_schema WHERE one = 1').get()
        ?.version ?? 0,
    );
  } catch (e) {
    throw sqliteFailure(e, target);
  } finally {
    db?.close();
  }
}

/** A SQLite error said for the CLI: the flag, the file, and what to do; anything else as it came. */
export function sqliteFailure(error: unknown, target: SqliteTarget): unknown {
  const failure = (error as { cause?: unknown })?.cause ?? error;
  const code = Number((failure as { errcode?: unknown })?.errcode) & 0xff;
  const reason = (failure as Error)?.message ?? String(failure);
  switch (code) {
    case SQLITE_NOTADB:
      return new CliError(
        `${target.flag}: ${target.path} is not a SQLite database. Give the file the app's storage option names; nothing was written to this one.`,
      );
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      return new CliError(
        `${target.flag}: cannot open ${target.path} for writing (${reason}). The CLI writes to the store as the app does: run it as a user who can write the file and its directory.`,
      );
    case SQLITE_BUSY:
      return new CliError(
        `${target.flag}: ${target.path} stayed locked by another process for more than ${SQLITE_BUSY_TIMEOUT_MS} ms. A process holding a long write transaction on it (a SQLite shell, a backup) must finish first; then try again.`,
      );
    default:
      return error;
  }
}
