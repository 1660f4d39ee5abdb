import {
  type DynamicModule,
  Inject,
  Injectable,
  Module,
  type OnModuleInit,
} from '@nestjs/common';
import {
  Counter,
  Gauge,
  Histogram,
  register as defaultRegistry,
  type Registry,
} from 'prom-client';
import { ParallelWorker } from '../parallel-worker';
import {
  ParallelWorkerEvent,
  type RangeCompletedEvent,
  type RangeFailedEvent,
  type RunHeldEvent,
  type HealthUnknownEvent,
} from '../parallel-worker.events';

const REGISTRY = Symbol('PARALLEL_WORKER_METRICS_REGISTRY');

/**
 * prom-client metrics of this host's runs, in the given registry (prom-client's
 * default one unless told otherwise), so the app's existing /metrics endpoint
 * (or @willsoto/nestjs-prometheus) serves them.
 */
@Injectable()
export class ParallelWorkerMetrics implements OnModuleInit {
  readonly ranges: Counter<'job' | 'outcome'>;
  readonly ids: Counter<'job'>;
  readonly duration: Histogram<'job'>;
  readonly heldSeconds: Counter<'job' | 'indicator'>;
  readonly healthUnknown: Counter<'job' | 'indicator'>;

  constructor(
    private readonly worker: ParallelWorker,
    @Inject(REGISTRY) registry: Registry,
  ) {
    const registers = [registry];
    this.ranges = new Counter({
      name: 'parallel_worker_ranges_total',
      help: 'Ranges handled by this host, by outcome (completed, retry, dead, stale)',
      labelNames: ['job', 'outcome'],
      registers,
    });
    this.ids = new Counter({
      name: 'parallel_worker_ids_total',
      help: 'Ids in ranges this host completed',
      labelNames: ['job'],
      registers,
    });
    this.duration = new Histogram({
      name: 'parallel_worker_range_duration_seconds',
      help: 'How long a range handler ran',
      labelNames: ['job'],
      registers,
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    });
    this.heldSeconds = new Counter({
      name: 'parallel_worker_hold_seconds_total',
      help: 'Seconds of holds this host put on runs, by the health indicator that said hold',
      labelNames: ['job', 'indicator'],
      registers,
    });
    this.healthUnknown = new Counter({
      name: 'parallel_worker_health_unknown_total',
      help: 'Health indicator answers that could not tell (a throw, a bad answer, no answer within healthTimeoutMs)',
      labelNames: ['job', 'indicator'],
      registers,
    });
    const jobs = () => this.worker.jobs();
    const gauge = (
      name: string,
      help: string,
      read: (
        s: Awaited<ReturnType<ParallelWorker['status']>>,
      ) => number | undefined,
    ) =>
      new Gauge({
        name,
        help,
        labelNames: ['job'],
        registers,
        async collect() {
          for (const job of jobs()) {
            const value = read(await worker.status(job));
            if (value !== undefined) this.set({ job }, value);
          }
        },
      });
    gauge(
      'parallel_worker_leased_ranges',
      'Ranges leased now, all hosts',
      (s) => s.ranges.leased,
    );
    gauge(
      'parallel_worker_retrying_ranges',
      'Ranges waiting for a retry, all hosts',
      (s) => s.ranges.retrying,
    );
    gauge(
      'parallel_worker_dead_letters',
      'Ranges in the dead letters',
      (s) => s.ranges.dead,
    );
    gauge(
      'parallel_worker_lag_ids',
      'Ids left to do (needs a @RangeTotal)',
      (s) =>
        s.total === undefined ? undefined : Math.max(0, s.total - s.ids.done),
    );
    gauge(
      'parallel_worker_rate_ids_per_second',
      'Ids per second over the last minute, all hosts',
      (s) => s.rate,
    );
    gauge(
      'parallel_worker_on_hold',
      'Whether the run is on hold now (the health option), all hosts',
      (s) => (s.hold ? 1 : 0),
    );
    gauge(
      'parallel_worker_held_seconds',
      'How long the current or last run has been on hold in all, all hosts',
      (s) => (s.heldMs === undefined ? undefined : s.heldMs / 1000),
    );
    gauge(
      'parallel_worker_partitions_left',
      'Partitions whose loader has not reached their end in this run (jobs with @RangePartitions)',
      (s) => s.partitions?.filter((p) => !p.exhausted).length,
    );
    new Gauge({
      name: 'parallel_worker_partition_ids',
      help: 'Ids handed out from each partition in this run, all hosts (jobs with @RangePartitions; partition 1 is the first)',
      labelNames: ['job', 'partition'],
      registers,
      async collect() {
        for (const job of jobs())
          for (const p of (await worker.status(job)).partitions ?? [])
            this.set({ job, partition: String(p.index + 1) }, p.ids);
      },
    });
  }

  onModuleInit(): void {
    this.worker.observe((event, payload) => {
      if (event === (ParallelWorkerEvent.RangeCompleted as string)) {
        const e = payload as RangeCompletedEvent;
        this.ranges.inc({
          job: e.job,
          outcome: e.counted ? 'completed' : 'stale',
        });
        if (e.counted) this.ids.inc({ job: e.job }, e.range.count);
        if (e.durationMs !== undefined)
          this.duration.observe({ job: e.job }, e.durationMs / 1000);
      } else if (event === (ParallelWorkerEvent.RangeFailed as string)) {
        const e = payload as RangeFailedEvent;
        this.ranges.inc({ job: e.job, outcome: e.outcome });
      } else if (event === (ParallelWorkerEvent.RunHeld as string)) {
        const e = payload as RunHeldEvent;
        this.heldSeconds.inc(
          { job: e.job, indicator: e.indicator },
          e.holdMs / 1000,
        );
      } else if (event === (ParallelWorkerEvent.HealthUnknown as string)) {
        const e = payload as HealthUnknownEvent;
        this.healthUnknown.inc({ job: e.job, indicator: e.indicator });
      }
    });
  }
}

/** `ParallelWorkerMetricsModule.register({ registry? })` next to `ParallelWorkerModule` (made global, or in the same module). */
@Module({})
export class ParallelWorkerMetricsModule {
  static register(options: { registry?: Registry } = {}): DynamicModule {
    return {
      module: ParallelWorkerMetricsModule,
      providers: [
        { provide: REGISTRY, useValue: options.registry ?? defaultRegistry },
        ParallelWorkerMetrics,
      ],
      exports: [ParallelWorkerMetrics],
    };
  }
}
