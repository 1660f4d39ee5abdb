import type {
  RedisConnectionOptions,
  RedisLikeClient,
} from '../interfaces/parallel-worker-options.interface';
import { describeRedis } from './owned-redis';
import type { CoordinationStore } from './coordination-store.interface';
import { REDIS_EVICTS } from '../parallel-worker.messages';
import type { ModuleLogger } from '../parallel-worker.logger';
import { RedisJob, type Client } from './redis/redis-job';
import { redactSecrets } from '../redact-secrets';

/** An app's ioredis client as `Redis at host:port` (its options; never credentials). */
function describeClient(client: unknown): string {
  const c = client as {
    options?: RedisConnectionOptions;
    startupNodes?: unknown[];
  };
  if (Array.isArray(c.startupNodes)) {
    const nodes = c.startupNodes.map((n) =>
      typeof n === 'object' && n
        ? `${(n as { host?: string }).host ?? '127.0.0.1'}:${(n as { port?: number }).port ?? 6379}`
        : String(n),
    );
    return redactSecrets(`Redis Cluster at ${nodes.join(',')}`);
  }
  return describeRedis(c.options ?? {});
}

/**
 * Coordination in Redis, for any number of hosts: every read-and-write is one
 * Lua script on keys sharing the hash tag `{<storageKey>:<job>}`, with time
 * from Redis `TIME`. Scripts run by SHA and are sent again when Redis lost
 * its script cache (a restart, SCRIPT FLUSH). The client is the user's and
 * is never closed here.
 */
export class RedisStore implements CoordinationStore {
  private readonly client: Client;

  /** Where the client points, without credentials. */
  readonly where: string;

  /**
   * `own`: the client is the module's (made from a URL or options), so
   * `close()` closes it; otherwise it is the app's and stays open.
   */
  constructor(
    client: RedisLikeClient,
    private readonly prefix: string,
    private readonly own?: {
      where: string;
      close(): Promise<void>;
      problem(): string | undefined;
    },
    /** Where the warning about an evicting Redis goes (once, at the first run this store starts). */
    private readonly logger?: ModuleLogger,
  ) {
    this.client = client as unknown as Client;
    this.where = own?.where ?? describeClient(client);
  }

  /** Why the module's own client cannot reach Redis now, if it cannot. */
  problem(): string | undefined {
    return this.own?.problem();
  }

  async close(): Promise<void> {
    await this.own?.close();
  }

  private evictionChecked = false;

  /**
   * Warns when Redis may evict keys of a running job: with an allkeys-*
   * policy any key may go; volatile-* ones evict only keys with a TTL, and
   * this store sets none. Managed Redis often refuses CONFIG: then nothing
   * is known, and only a debug line says so.
   */
  private async warnIfEvicting(): Promise<void> {
    if (this.evictionChecked || !this.logger) return;
    this.evictionChecked = true;
    try {
      const nodes = this.client.nodes
        ? this.client.nodes('master')
        : [this.client];
      const policies = new Set<string>();
      for (const node of nodes) {
        const answer = (await (node as Client).config(
          'GET',
          'maxmemory-policy',
        )) as string[];
        if (answer?.[1]) policies.add(answer[1]);
      }
      for (const policy of policies)
        if (policy.startsWith('allkeys-'))
          this.logger.warn(REDIS_EVICTS(this.where, policy));
    } catch (e) {
      this.logger.debug(
        `${this.where} did not tell its maxmemory-policy (${(e as Error).message}); state lost to eviction is still detected.`,
      );
    }
  }

  private readonly handles = new Map<string, RedisJob>();

  job(name: string): RedisJob {
    let job = this.handles.get(name);
    if (!job) {
      job = new RedisJob(name, this.prefix, {
        client: this.client,
        starting: () => void this.warnIfEvicting(),
      });
      this.handles.set(name, job);
    }
    return job;
  }

  /** Jobs that have state under this prefix (the CLI lists them when asked for an unknown one); on a Cluster, from every master. */
  async jobs(): Promise<string[]> {
    const found = new Set<string>();
    const nodes = this.client.nodes
      ? this.client.nodes('master')
      : [this.client];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(
          cursor,
          'MATCH',
          `{${this.prefix}:*}:meta`,
          'COUNT',
          1000,
        );
        cursor = next;
        for (const key of keys)
          found.add(key.slice(this.prefix.length + 2, key.indexOf('}')));
      } while (cursor !== '0');
    }
    return [...found].sort();
  }
}
