import { SqliteStore } from '../../lib/store/sql/sqlite.store';
import { hostLoop } from './store-host-loop';

// Started by StoreProcess: a store over the file named first, answering calls by IPC.
const store = new SqliteStore(process.argv[2]);
const methods: Record<string, (...args: any[]) => Promise<unknown>> = {
  hostLoop: (...args: [string, string, number, number]) =>
    hostLoop(store, ...args),
};

process.on(
  'message',
  (call: { id: number; method: string; args: unknown[] }) => {
    // Any other call is one of a job's: its name, then the call's options.
    const method =
      methods[call.method] ??
      ((job: string, options: unknown) =>
        (
          store.job(job) as unknown as Record<
            string,
            (o: unknown) => Promise<unknown>
          >
        )[call.method](options));
    Promise.resolve()
      .then(() => method(...call.args))
      .then(
        (result) => process.send?.({ id: call.id, result }),
        (e: Error) =>
          process.send?.({
            id: call.id,
            error: { name: e.name, message: e.message },
          }),
      );
  },
);
process.send?.('ready');
