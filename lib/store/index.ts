export * from './coordination-store.interface';
export * from './job-store.interface';
export { KeyValueStore, type KeyValueStorage } from './key-value.store';
export { MemoryStore } from './memory.store';
export { SqliteStore } from './sql';
