import { fork } from 'node:child_process';
import { burn } from '../burn';

/**
 * The ceiling for the CPU-bound workload: `node plain-hash.js <processes>`
 * splits BENCH_ROWS ids (BENCH_CPU_ROUNDS hashes each) over that many plain
 * Node processes, side by side, with no coordination at all. Their speed-up
 * from 1 to 2 processes is what the machine itself allows; the library's is
 * reported as a fraction of it. Prints `RESULT {"ranges","seconds"}`.
 */
const [, , arg = '1', role] = process.argv;
const ROWS = Number(process.env.BENCH_ROWS ?? 4000);
const ROUNDS = Number(process.env.BENCH_CPU_ROUNDS ?? 2000);

if (role === 'child') {
  const ids = Number(arg);
  for (let i = 0; i < ids; i++) burn(ROUNDS);
  process.exit(0);
} else {
  const processes = Number(arg);
  const started = Date.now();
  let left = processes;
  for (let p = 0; p < processes; p++) {
    const share = Math.floor(ROWS / processes) + (p < ROWS % processes ? 1 : 0);
    fork(__filename, [String(share), 'child']).on('exit', (code) => {
      if (code !== 0) throw new Error(`a hashing process exited ${code}`);
      if (--left > 0) return;
      const seconds = (Date.now() - started) / 1000;
      process.stdout.write(
        `RESULT ${JSON.stringify({ ranges: ROWS, seconds })}\n`,
      );
    });
  }
}
