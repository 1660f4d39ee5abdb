export { SqliteStore } from './sqlite.store';
