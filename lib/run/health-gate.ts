import type { HealthSignal } from '../interfaces/health-indicator.interface';
import {
  HealthUnknownEvent,
  ParallelWorkerEvent,
  RunHeldEvent,
} from '../parallel-worker.events';
import {
  HEALTH_UNKNOWN,
  THROTTLE_TIMED_OUT,
} from '../parallel-worker.messages';
import type { StoredHold } from '../store/coordination-store.interface';
import { toWireError } from '../cluster/wire-error';
import { redactSecrets } from '../redact-secrets';
import {
  checked,
  indicatorsOf,
  type NamedIndicator,
} from './health-indicators';
import type { RunDeps } from './run-deps';
import { TimeLimitError, withinMs } from './time-limit';

/**
 * Database-health holds for one run on this host (DESIGN 3b). Handing out is
 * open unless a hold lasts: one this host put, or one another host put that
 * the store reports (`seen`, from the engine's poll of the store's state, and
 * claims answering `wait`). One host at a time asks the indicators (the
 * store's health turn), every `healthIntervalMs` and when a hold ends; an
 * indicator saying hold puts the hold into the store for every host. An
 * indicator that throws or does not answer within `healthTimeoutMs` is
 * unknown: logged and counted, a hold only with `holdOnUnknown`.
 */
export class HealthGate {
  private readonly indicators: NamedIndicator[];
  private readonly intervalMs: number;
  /** Until when (this host's monotonic clock) handing out is held. */
  private heldUntil = 0;
  private hold?: StoredHold;

  /** The last hold this host put or saw in the store (for the run's history record). */
  get lastHold(): StoredHold | undefined {
    return this.hold && { ...this.hold };
  }
  private asking = false;
  /** The indicators were asked once on this host (or its turn went to another host): until then nothing goes out. */
  private asked = false;
  private lastAsk = -Infinity;
  /** This host put the current hold (it had the turn): when it ends, it asks again at once (its turn is due then). */
  private putHold = false;
  /** Asking again after this host's hold ended: nothing goes out until the answer. */
  private recheck = false;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private wakeTimer?: NodeJS.Timeout;
  /** Indicators whose last call has not settled (it timed out): not called again until it does. */
  private readonly busy = new Set<string>();
  /** Indicators whose last answer was unknown: warned once until they answer again. */
  private readonly unknown = new Set<string>();

  constructor(
    private readonly d: RunDeps,
    /** Handing out may go on again. */
    private readonly resume: () => void,
    /** A hold began (true; this host's or another's) or ended (false): the range size backs off, then grows back. */
    private readonly onHold: (held: boolean) => void = () => undefined,
  ) {
    const { options } = d;
    this.indicators = indicatorsOf(options.health, options.throttle);
    const only = this.indicators.length === 1 ? this.indicators[0] : undefined;
    this.intervalMs = only?.everyMs ?? options.healthIntervalMs;
    if (this.indicators.length > 0)
      this.timer = setInterval(() => this.askIfDue(), this.intervalMs);
  }

  /** True while handing out may go on; starts a check of the indicators when one is due. */
  open(): boolean {
    // A hold another host put closes the gate here too, with or without indicators of this host's own.
    if (performance.now() < this.heldUntil) return false;
    if (this.indicators.length === 0) return true;
    this.askIfDue();
    return this.asked && !this.recheck;
  }

  /** A range ended: the indicators are asked if they were not asked within the interval. */
  rangeEnded(): void {
    if (this.indicators.length > 0) this.askIfDue();
  }

  /**
   * The store's state, as the engine polls it every `nextLookMs`: a hold
   * another host put closes the gate here too, at least until the next look
   * (the host that asks renews a hold as it ends while the database stays
   * unhealthy, and this host would not see that before then).
   */
  seen(
    hold: StoredHold | undefined,
    storeNow: number,
    nextLookMs: number,
  ): void {
    // The host that put the hold keeps its own time: it asks again as the hold ends and renews it or lets it go.
    if (!hold || this.stopped || this.putHold) return;
    this.holdUntil(hold, Math.max(hold.until - storeNow, nextLookMs));
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.wakeTimer);
  }

  private holdUntil(hold: StoredHold, leftMs: number): void {
    const until = performance.now() + Math.max(0, leftMs);
    if (until <= this.heldUntil) return;
    const wasOpen = performance.now() >= this.heldUntil;
    this.heldUntil = until;
    this.hold = hold;
    if (wasOpen) this.onHold(true);
    if (wasOpen)
      this.d.logger.info(
        `Job "${this.d.job.name}": on hold (${hold.indicator}: ${hold.reason}); no new ranges for ${Math.round(leftMs)} ms, ranges in flight finish.`,
      );
    clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => this.ended(), Math.max(0, leftMs));
  }

  private ended(): void {
    if (this.stopped) return;
    // A timer may fire a moment before the monotonic clock reaches its time: wait out the rest.
    const left = this.heldUntil - performance.now();
    if (left > 0) {
      this.wakeTimer = setTimeout(() => this.ended(), Math.ceil(left) + 1);
      return;
    }
    this.onHold(false);
    this.d.logger.info(
      `Job "${this.d.job.name}": hold over (${this.hold?.indicator}); asking the indicators again.`,
    );
    this.askIfDue();
    if (!this.recheck) this.resume();
  }

  /**
   * Asks the indicators when due: after the interval, or at once when the
   * hold this host put has ended (whichever timer sees that first; the
   * store's turn is due then), with the gate closed until the answer. A host
   * without indicators of its own never asks (nor takes a turn).
   */
  private askIfDue(): void {
    if (this.stopped || this.asking || this.indicators.length === 0) return;
    if (performance.now() < this.heldUntil) return;
    const again = this.putHold;
    if (!again && performance.now() - this.lastAsk < this.intervalMs) return;
    this.putHold = false;
    this.recheck = again;
    this.lastAsk = performance.now();
    this.asking = true;
    void this.ask(again).finally(() => {
      this.asking = false;
      const first = !this.asked;
      this.asked = true;
      this.recheck = false;
      if (
        (first || again) &&
        !this.stopped &&
        performance.now() >= this.heldUntil
      )
        this.resume();
    });
  }

  /** `again`: this host's hold just ended: it asks without a turn (no one else has one yet). */
  private async ask(again: boolean): Promise<void> {
    const { store, runId, job, params, options } = this.d;
    try {
      // Through the store's turn, but for asking again as its own hold ends: the store gives no one else a turn
      // until a hold's length after that, so one host asks however long the database stays unhealthy.
      const turn =
        again || !store.healthTurn
          ? true
          : await store.healthTurn({ runId, intervalMs: this.intervalMs });
      if (!turn || this.stopped) return;
    } catch {
      // The store did not answer: its own errors show elsewhere; asked again at the next interval.
      return;
    }
    const ctx = { job: job.name, runId, ...(params && { params }) };
    const answers = await Promise.all(
      this.indicators.map(async (indicator) => ({
        indicator,
        signal: await this.answer(indicator, ctx),
      })),
    );
    if (this.stopped) return;
    const holds = answers.filter(
      (a): a is typeof a & { signal: HealthSignal & { state: 'hold' } } =>
        a.signal.state === 'hold',
    );
    const unknown = answers.filter((a) => a.signal.state === 'unknown');
    const first =
      holds[0] ??
      (options.holdOnUnknown && unknown[0]
        ? {
            indicator: unknown[0].indicator,
            signal: {
              state: 'hold' as const,
              reason: `unknown (holdOnUnknown): ${(unknown[0].signal as { reason: string }).reason}`,
            },
          }
        : undefined);
    if (!first) return;
    const holdMs = Math.max(
      1,
      Math.round(first.signal.holdMs ?? this.intervalMs),
    );
    const reason = first.signal.reason;
    const indicator = first.indicator.name;
    try {
      if (store.hold) await store.hold({ runId, reason, indicator, holdMs });
    } catch (e) {
      this.d.logger.warn(
        `Job "${job.name}": ${indicator} said hold (${reason}) but the store did not take the hold (${toWireError(e).message}); holding this host only.`,
      );
    }
    if (this.stopped) return;
    this.putHold = true;
    const since = Date.now();
    this.holdUntil({ reason, indicator, since, until: since + holdMs }, holdMs);
    this.d.events.emit(
      ParallelWorkerEvent.RunHeld,
      new RunHeldEvent(job.name, runId, indicator, reason, holdMs),
    );
  }

  /** One indicator's answer; a throw, a bad answer or no answer in time is unknown. */
  private async answer(
    indicator: NamedIndicator,
    ctx: { job: string; runId: string; params?: Record<string, unknown> },
  ): Promise<HealthSignal> {
    const { job, runId, options, logger, events } = this.d;
    let signal: HealthSignal;
    try {
      // A call that timed out may still hold a connection: it is not called again before it settles.
      if (this.busy.has(indicator.name))
        throw new Error(
          `its previous check has not answered yet (over healthTimeoutMs, ${options.healthTimeoutMs} ms)`,
        );
      const answer = await withinMs(
        options.healthTimeoutMs,
        () => {
          this.busy.add(indicator.name);
          const call = (async () => indicator.ask(ctx))();
          void call
            .catch(() => undefined)
            .finally(() => this.busy.delete(indicator.name));
          return call;
        },
        true,
      );
      signal = checked(answer);
    } catch (e) {
      const timedOut = e instanceof TimeLimitError;
      signal = {
        state: 'unknown',
        reason: timedOut
          ? `no answer within healthTimeoutMs (${options.healthTimeoutMs} ms)`
          : toWireError(e).message,
      };
      if (timedOut && indicator.name === 'throttle' && !options.holdOnUnknown) {
        if (!this.unknown.has(indicator.name))
          logger.warn(
            THROTTLE_TIMED_OUT(
              job.name,
              options.healthTimeoutMs,
              this.intervalMs,
            ),
          );
        this.unknown.add(indicator.name);
        events.emit(
          ParallelWorkerEvent.HealthUnknown,
          new HealthUnknownEvent(
            job.name,
            runId,
            indicator.name,
            signal.reason,
          ),
        );
        return signal;
      }
    }
    // Reasons reach logs, the store and the dashboard: a connection string in one is masked.
    if (signal.state !== 'ok')
      signal = { ...signal, reason: redactSecrets(signal.reason) };
    if (signal.state === 'unknown') {
      if (!this.unknown.has(indicator.name))
        logger.warn(
          HEALTH_UNKNOWN(
            job.name,
            indicator.name,
            signal.reason,
            options.holdOnUnknown,
          ),
        );
      this.unknown.add(indicator.name);
      events.emit(
        ParallelWorkerEvent.HealthUnknown,
        new HealthUnknownEvent(job.name, runId, indicator.name, signal.reason),
      );
    } else if (this.unknown.delete(indicator.name)) {
      logger.info(`Job "${job.name}": ${indicator.name} answers again.`);
    }
    return signal;
  }
}
