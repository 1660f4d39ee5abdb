import { ParallelWorker } from 'nestjs-parallel-worker';
import { LoggerModule } from 'nestjs-pino';
import { pino } from 'pino';
import { prettyFactory } from 'pino-pretty';

// The same entry script runs as the primary and as every forked worker, so
// each line says which process wrote it.
const role = ParallelWorker.isWorker() ? 'worker' : 'primary';

/**
 * nestjs-pino for both samples: every line carries `pid` and `role`.
 * Pretty and coloured on a terminal, JSON lines otherwise (CI, files, jq).
 * Writes are synchronous so a worker's last lines are not lost when it exits.
 */
export const SampleLoggerModule = LoggerModule.forRoot({
  pinoHttp: [
    {
      // Workers say only what matters: their start-up lines, times 4, would bury the primary's.
      level: process.env.LOG_LEVEL ?? (role === 'worker' ? 'warn' : 'info'),
      base: { pid: process.pid, role },
      // A request line per GET /status would drown the job's own lines.
      autoLogging: false,
    },
    process.stdout.isTTY
      ? terminal()
      : pino.destination({ dest: 1, sync: true }),
  ],
});

/**
 * Pretty lines that first erase the current terminal line: the primary's
 * progress bar has no newline, and any process (workers included) writing
 * after it would otherwise continue on the bar's line. The bar redraws
 * itself below on its next tick.
 */
function terminal(): { write(line: string): void } {
  const pretty = prettyFactory({
    colorize: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'hostname,role,context',
    messageFormat: '{role} {if context}[{context}] {end}{msg}',
  });
  return {
    write: (line) => void process.stdout.write(`\x1b[2K\r${pretty(line)}`),
  };
}
