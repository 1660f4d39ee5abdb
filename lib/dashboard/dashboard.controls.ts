import { Logger } from '@nestjs/common';
import { RunFailedError } from '../errors/run-failed.error';
import type { ParallelWorker } from '../parallel-worker';
import type { Action } from './dashboard.view-model';

/** What a control POST may carry: the start form's params text, or the dead letter to retry. */
export interface ControlBody {
  params?: unknown;
  letter?: unknown;
}

/** A control refused for what the request holds (400) or for the job's state (409). */
export class ControlRefused extends Error {
  constructor(
    readonly status: 400 | 409,
    message: string,
  ) {
    super(message);
  }
}

const ACTIVE = ['running', 'paused', 'stopping'];

/** What each control does, and what the page says it did. */
export class DashboardControls {
  private readonly logger = new Logger('ParallelWorkerDashboard');

  constructor(private readonly worker: ParallelWorker) {}

  async act(
    job: string,
    action: Action,
    body: ControlBody,
    startedBy: string,
  ): Promise<string> {
    switch (action) {
      case 'start':
        return this.start(job, body.params, startedBy);
      case 'pause':
        await this.worker.pause(job);
        return `Paused "${job}": every host stops handing out within a second.`;
      case 'resume':
        await this.worker.resume(job);
        return `Resumed "${job}".`;
      case 'cancel':
        await this.worker.cancel(job);
        return `Cancelled the run of "${job}" on every host; the cursor stays.`;
      case 'retry-dead':
        return body.letter === undefined
          ? this.retryAll(job)
          : this.retryOne(job, body.letter);
      case 'reset':
        await this.worker.reset(job);
        return `Reset "${job}": its next run starts from the first row.`;
    }
  }

  /**
   * Starts a run on this host, in the background: answers once the store
   * started it. Params are the start form's text, parsed here and then
   * checked by run() itself (JSON values only, the job's params validator).
   */
  private async start(
    job: string,
    text: unknown,
    startedBy: string,
  ): Promise<string> {
    if (text !== undefined && typeof text !== 'string')
      throw new ControlRefused(400, 'params must be sent as JSON text.');
    let params: Record<string, unknown> | undefined;
    if (text !== undefined && text.trim() !== '')
      try {
        params = JSON.parse(text) as Record<string, unknown>;
      } catch (e) {
        throw new ControlRefused(
          400,
          `Job "${job}" was not started: the params are not JSON (${(e as Error).message}).`,
        );
      }
    const status = await this.worker.status(job);
    if (ACTIVE.includes(status.state))
      throw new ControlRefused(
        409,
        `Job "${job}" was not started: its run ${status.runId?.slice(0, 8)} is ${status.state}; wait for it, or cancel it first.`,
      );
    const { runId, joined, finished } = await this.worker.begin(job, {
      ...(params !== undefined && { params }),
      startedBy,
    });
    finished.then(
      (s) =>
        this.logger.log(
          `Job "${job}": run ${runId} started from the dashboard ended ${s.status}.`,
        ),
      (e: unknown) =>
        this.logger.error(
          e instanceof RunFailedError
            ? e.message
            : `Job "${job}": run ${runId} started from the dashboard: ${String(e)}`,
        ),
    );
    return joined
      ? `Joined run ${runId.slice(0, 8)} of "${job}", which another host started a moment before.`
      : `Started run ${runId.slice(0, 8)} of "${job}" on this host${params === undefined ? '' : ` with params ${JSON.stringify(params)}`}.`;
  }

  private async retryAll(job: string): Promise<string> {
    const n = await this.worker.retryDead(job);
    return n
      ? `${n} dead-lettered ${n === 1 ? 'range goes' : 'ranges go'} out again${await this.when(job)}.`
      : `"${job}" has no dead letters.`;
  }

  private async retryOne(job: string, letter: unknown): Promise<string> {
    const { runId, firstId } = (letter ?? {}) as Record<string, unknown>;
    if (
      typeof runId !== 'string' ||
      !(typeof firstId === 'string' || typeof firstId === 'number')
    )
      throw new ControlRefused(
        400,
        'A dead letter is named by its run id (a string) and its first id (a number or a string).',
      );
    const n = await this.worker.retryDead(job, {
      only: { runId, firstId },
    });
    if (!n)
      throw new ControlRefused(
        409,
        `That dead letter of "${job}" (run ${runId.slice(0, 8)}, first id ${JSON.stringify(firstId)}) is not in the list any more: retried or reset already. Nothing was retried.`,
      );
    return `The dead letter of "${job}" starting at id ${JSON.stringify(firstId)} goes out again${await this.when(job)}.`;
  }

  private async when(job: string): Promise<string> {
    return (await this.worker.status(job)).state === 'running'
      ? ' now'
      : ' in the next run';
  }
}
