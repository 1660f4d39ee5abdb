import {
  type CanActivate,
  Controller,
  type DynamicModule,
  type ModuleMetadata,
  ForbiddenException,
  Get,
  Header,
  Headers,
  HttpCode,
  HttpException,
  Inject,
  Module,
  NotFoundException,
  Optional,
  Param,
  Post,
  Query,
  Req,
  type Type,
  UseGuards,
} from '@nestjs/common';
import { ParallelWorkerConfigError } from '../errors/parallel-worker-config.error';
import { RunRefusedError } from '../errors/run-refused.error';
import { UnknownJobError } from '../errors/unknown-job.error';
import { ParallelWorker } from '../parallel-worker';
import { redactSecrets } from '../redact-secrets';
import { DASHBOARD_CSS, DASHBOARD_JS } from './dashboard.assets';
import {
  type JobView,
  type PageOptions,
  renderDead,
  renderPage,
  renderRuns,
  renderStats,
} from './dashboard.view';

/** Options of `ParallelWorkerDashboardModule.register()`. */
export interface DashboardOptions {
  /** Where the page is mounted, under the app's global prefix. Default `'parallel-worker'`. */
  path?: string;
  /**
   * Render and accept the controls (pause, resume, cancel, retry dead letters,
   * reset). Default `false`: read-only, and every control POST is refused (403).
   */
  controls?: boolean;
  /** Guards for every route of the dashboard (your auth), as `@UseGuards()` takes them. */
  guards?: (CanActivate | Type<CanActivate>)[];
  /** Modules the guards' own dependencies come from (an auth module). */
  imports?: ModuleMetadata['imports'];
  /** The page's title. Default `'Parallel worker'`. */
  title?: string;
  /** How often the page refreshes its figures, in ms; at least 1000. Default `1000`. */
  pollMs?: number;
  /** Dead letters per page. Default `20`. */
  deadPageSize?: number;
  /** Recent runs shown per job. Default `10`. */
  runs?: number;
}

/** The header the page's script sends with every control: a cross-site form cannot set it. */
export const DASHBOARD_HEADER = 'x-parallel-worker-dashboard';

/** What the page needs of a request (Express and Fastify alike). */
interface Request {
  originalUrl?: string;
  url?: string;
  /**
   * The host the client asked for, as the framework reads it: the Host
   * header, or X-Forwarded-Host only when the app trusts its proxy
   * (Express `trust proxy`, Fastify `trustProxy`).
   */
  host?: string;
  headers?: Record<string, string | string[] | undefined>;
}

const ACTIONS = ['pause', 'resume', 'cancel', 'retry-dead', 'reset'] as const;
type Action = (typeof ACTIONS)[number];

type Resolved = Required<Omit<DashboardOptions, 'guards' | 'imports'>> & {
  guards: NonNullable<DashboardOptions['guards']>;
};

function resolve(options: DashboardOptions): Resolved {
  const path = (options.path ?? 'parallel-worker').replace(/^\/+|\/+$/g, '');
  if (!/^[A-Za-z0-9._~\-/]*$/.test(path))
    throw new ParallelWorkerConfigError(
      `ParallelWorkerDashboardModule: path ${JSON.stringify(options.path)} must be a plain URL path (letters, digits, '-', '_', '.', '~', '/').`,
    );
  const int = (
    name: keyof DashboardOptions,
    value: unknown,
    fallback: number,
    min: number,
  ) => {
    if (value === undefined) return fallback;
    if (!Number.isInteger(value) || (value as number) < min)
      throw new ParallelWorkerConfigError(
        `ParallelWorkerDashboardModule: option "${name}" must be a whole number >= ${min}, got ${JSON.stringify(value)}.`,
      );
    return value as number;
  };
  return {
    path,
    controls: options.controls === true,
    guards: options.guards ?? [],
    title: options.title ?? 'Parallel worker',
    pollMs: int('pollMs', options.pollMs, 1000, 1000),
    deadPageSize: int('deadPageSize', options.deadPageSize, 20, 1),
    runs: int('runs', options.runs, 10, 0),
  };
}

/**
 * The request comes from a page of this app: the browser says so
 * (`Sec-Fetch-Site`, which no script can set), or, from an older browser, its
 * `Origin` has the host the request was sent to. A client can send any
 * X-Forwarded-Host, so it counts only where the app trusts its proxy: the
 * framework's `request.host` reads it then, and the Host header otherwise.
 */
const sameOrigin = (
  request: Request,
  headers: Record<string, string | undefined>,
): boolean => {
  const site = headers['sec-fetch-site'];
  if (site) return site === 'same-origin';
  const origin = headers.origin;
  if (!origin) return true;
  const host =
    typeof request.host === 'string' ? request.host : (headers.host ?? '');
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
};

function dashboardController(o: Resolved): Type<unknown> {
  @Controller(o.path)
  class ParallelWorkerDashboardController {
    /** The page's options; `base` is where this request found the page (the app's global prefix included). */
    private page(request: Request, below = ''): PageOptions {
      const path = (request.originalUrl ?? request.url ?? `/${o.path}`).split(
        '?',
      )[0];
      return {
        base: path
          .replace(/\/+$/, '')
          .slice(0, below ? -below.length : undefined),
        title: o.title,
        controls: o.controls,
        pollMs: o.pollMs,
      };
    }

    private readonly worker: ParallelWorker;

    constructor(@Optional() @Inject(ParallelWorker) worker?: ParallelWorker) {
      // Nest's own error names only a missing dependency: this one says how to give it.
      if (!worker) throw new ParallelWorkerConfigError(DASHBOARD_NO_WORKER);
      this.worker = worker;
    }

    @Get()
    @Header('Content-Type', 'text/html; charset=utf-8')
    @Header('Cache-Control', 'no-store')
    async index(
      @Req() request: Request,
      @Query('job') job?: string,
      @Query('dead') dead?: string,
    ): Promise<string> {
      return renderPage(await this.views(job, dead), this.page(request));
    }

    @Get('dashboard.css')
    @Header('Content-Type', 'text/css; charset=utf-8')
    @Header('Cache-Control', 'max-age=300')
    css(): string {
      return DASHBOARD_CSS;
    }

    @Get('dashboard.js')
    @Header('Content-Type', 'text/javascript; charset=utf-8')
    @Header('Cache-Control', 'max-age=300')
    js(): string {
      return DASHBOARD_JS;
    }

    /** The live parts of every job, as HTML the script swaps in. */
    @Get('live.json')
    @Header('Cache-Control', 'no-store')
    async live(
      @Req() request: Request,
      @Query('job') job?: string,
      @Query('dead') dead?: string,
    ) {
      const page = this.page(request, '/live.json');
      const views = await this.views(job, dead);
      return {
        jobs: Object.fromEntries(
          views.map((v) => [
            v.status.job,
            {
              stats: renderStats(v),
              runs: renderRuns(v),
              dead: renderDead(v, page),
            },
          ]),
        ),
      };
    }

    @Post(':job/:action')
    @HttpCode(200)
    async control(
      @Param('job') job: string,
      @Param('action') action: string,
      @Headers() headers: Record<string, string | undefined>,
      @Req() request: Request,
    ): Promise<{ ok: true; message: string }> {
      if (!o.controls)
        throw new ForbiddenException(
          'The dashboard is read-only: register it with { controls: true } to allow controls.',
        );
      if (headers[DASHBOARD_HEADER] !== '1' || !sameOrigin(request, headers))
        throw new ForbiddenException(
          `Refused: controls are sent by the dashboard page itself (same origin, with the ${DASHBOARD_HEADER} header).`,
        );
      if (!this.worker.jobs().includes(job))
        throw new NotFoundException(`No job "${job}" in this app.`);
      if (!(ACTIONS as readonly string[]).includes(action))
        throw new NotFoundException(
          `No control "${action}": use one of ${ACTIONS.join(', ')}.`,
        );
      try {
        return { ok: true, message: await this.act(job, action as Action) };
      } catch (e) {
        if (e instanceof RunRefusedError || e instanceof UnknownJobError)
          throw new HttpException({ statusCode: 409, message: e.message }, 409);
        throw e;
      }
    }

    private async act(job: string, action: Action): Promise<string> {
      switch (action) {
        case 'pause':
          await this.worker.pause(job);
          return `Paused "${job}": every host stops handing out within a second.`;
        case 'resume':
          await this.worker.resume(job);
          return `Resumed "${job}".`;
        case 'cancel':
          await this.worker.cancel(job);
          return `Cancelled the run of "${job}" on every host; the cursor stays.`;
        case 'retry-dead': {
          const n = await this.worker.retryDead(job);
          return n
            ? `${n} dead-lettered ${n === 1 ? 'range goes' : 'ranges go'} out again${(await this.worker.status(job)).state === 'running' ? ' now' : ' in the next run'}.`
            : `"${job}" has no dead letters.`;
        }
        case 'reset':
          await this.worker.reset(job);
          return `Reset "${job}": its next run starts from the first row.`;
      }
    }

    /** Every job of the app, read at once; `dead` is the dead-letter page of `job`. */
    private views(job?: string, dead?: string): Promise<JobView[]> {
      return Promise.all(
        this.worker
          .jobs()
          .map((name) => this.view(name, name === job ? dead : undefined)),
      );
    }

    private async view(
      job: string,
      dead: string | undefined,
    ): Promise<JobView> {
      // A page past the last shows none; never a number Redis refuses.
      const offset = Math.min(1e9, Math.max(0, Math.floor(Number(dead) || 0)));
      const [status, hosts, runs, letters] = await Promise.all([
        this.worker.status(job),
        this.worker.leasesByHost(job),
        o.runs
          ? this.worker.history(job, { limit: o.runs })
          : Promise.resolve([]),
        this.worker.deadLetters(job, { offset, limit: o.deadPageSize }),
      ]);
      // Stored text may quote a connection string (a handler's error): shown without its secrets.
      return {
        status: status.error
          ? { ...status, error: redactSecrets(status.error) }
          : status,
        hosts,
        runs: runs.map((r) =>
          r.error ? { ...r, error: redactSecrets(r.error) } : r,
        ),
        dead: {
          offset,
          limit: o.deadPageSize,
          letters: letters.map((d) => ({
            ...d,
            error: { ...d.error, message: redactSecrets(d.error.message) },
          })),
        },
      };
    }
  }
  if (o.guards.length)
    UseGuards(...o.guards)(ParallelWorkerDashboardController);
  return ParallelWorkerDashboardController;
}

const DASHBOARD_NO_WORKER =
  'ParallelWorkerDashboardModule: the dashboard cannot see ParallelWorker, so it has no jobs to show. ' +
  'Register the module as global, ParallelWorkerModule.forRoot({ isGlobal: true, … }) (or forRootAsync({ isGlobal: true, … })), ' +
  'or pass the module that imports and exports it: ParallelWorkerDashboardModule.register({ imports: [JobsModule] }).';

/**
 * A page that shows every job of the app (read from the store, so every
 * host's runs) and, with `controls: true`, steers them. Import it next to
 * `ParallelWorkerModule` in an HTTP app (Express or Fastify):
 * `ParallelWorkerDashboardModule.register({ path: 'jobs', guards: [AdminGuard] })`.
 */
@Module({})
export class ParallelWorkerDashboardModule {
  static register(options: DashboardOptions = {}): DynamicModule {
    const resolved = resolve(options);
    return {
      module: ParallelWorkerDashboardModule,
      imports: options.imports ?? [],
      controllers: [dashboardController(resolved)],
    };
  }
}
