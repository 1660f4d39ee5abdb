import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../lib';
import { storeContract } from '../contract/store.contract';

const dirs: string[] = [];
const freshFile = () => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-sqlite-store-'));
  dirs.push(dir);
  return join(dir, 'parallel-worker.db');
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

storeContract('SqliteStore', () => {
  const store = new SqliteStore(freshFile());
  return Promise.resolve({ store, job: 'items', close: () => store.close() });
});
