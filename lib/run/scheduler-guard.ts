import type { DiscoveryService } from '@nestjs/core';

/**
 * In a worker, no `@Cron`, `@Interval` or `@Timeout` of @nestjs/schedule may
 * fire (the primary's already do). Called from `onModuleInit`, before the
 * scheduler mounts them in `onApplicationBootstrap`: whatever is added to the
 * registry is stopped on the spot. @nestjs/schedule is optional: it is found
 * by its shape, never imported.
 */
export function silenceSchedulerInWorker(discovery: DiscoveryService): void {
  const registry = discovery
    .getProviders()
    .find(
      (w) =>
        typeof w.instance?.addCronJob === 'function' &&
        typeof w.instance?.getCronJobs === 'function',
    )?.instance;
  if (!registry) return;
  const stopCron = (job: { stop(): unknown; start?: unknown }) => {
    job.stop();
    // A cron with initialDelay is started later by a timer: make that a no-op too.
    job.start = () => undefined;
  };
  const addCronJob = registry.addCronJob.bind(registry);
  const addInterval = registry.addInterval.bind(registry);
  const addTimeout = registry.addTimeout.bind(registry);
  registry.addCronJob = (name: string, job: any) => (
    stopCron(job),
    addCronJob(name, job)
  );
  registry.addInterval = (name: string, ref: NodeJS.Timeout) => (
    clearInterval(ref),
    addInterval(name, ref)
  );
  registry.addTimeout = (name: string, ref: NodeJS.Timeout) => (
    clearTimeout(ref),
    addTimeout(name, ref)
  );
  for (const job of registry.getCronJobs().values()) stopCron(job);
  for (const name of registry.getIntervals())
    clearInterval(registry.getInterval(name));
  for (const name of registry.getTimeouts())
    clearTimeout(registry.getTimeout(name));
}
