import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';

/** A job's call (or `hostLoop`), as a child process is asked to make it. */
type Call = { id: number; method: string; args: unknown[] };
type Answer = {
  id: number;
  result?: unknown;
  error?: { name: string; message: string };
};

/**
 * A `SqliteStore` in another process over `file`, called through IPC: state
 * shared only through the file, as between two primaries on one machine.
 */
export class StoreProcess {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, (a: Answer) => void>();
  private next = 0;
  private readonly ready: Promise<void>;

  constructor(file: string) {
    this.child = fork(join(__dirname, 'store-process.child.ts'), [file], {
      execArgv: ['--require', join(__dirname, 'swc-register.js')],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // Structured clone, so an `undefined` argument stays undefined (JSON would send null: `from: null`).
      serialization: 'advanced',
    });
    this.ready = new Promise((resolve, reject) => {
      this.child.once('message', () => resolve());
      this.child.once('exit', (code) =>
        reject(new Error(`store process exited with ${code}`)),
      );
    });
    this.child.on('message', (a: Answer) => this.waiting.get(a.id)?.(a));
  }

  /**
   * Calls `method` of a job of the child's store (`call('claim', job, options)`), or `hostLoop`; rejects with the
   * error it threw (its name and message).
   */
  async call<T = unknown>(method: string, ...args: unknown[]): Promise<T> {
    await this.ready;
    const id = this.next++;
    const answer = await new Promise<Answer>((resolve) => {
      this.waiting.set(id, resolve);
      this.child.send({ id, method, args } satisfies Call);
    });
    this.waiting.delete(id);
    if (answer.error)
      throw Object.assign(new Error(answer.error.message), {
        name: answer.error.name,
      });
    return answer.result as T;
  }

  /** Ends the process at once (SIGKILL: no store call finishes, nothing is closed). */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await exited;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }
}
