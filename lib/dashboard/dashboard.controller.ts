import {
  Body,
  Controller,
  ForbiddenException,
  Get,
  Header,
  Headers,
  HttpCode,
  HttpException,
  Inject,
  NotFoundException,
  Optional,
  Param,
  Post,
  Query,
  Req,
  type Type,
  UseGuards,
} from '@nestjs/common';
import { InvalidParamsError } from '../errors/invalid-params.error';
import { ParallelWorkerConfigError } from '../errors/parallel-worker-config.error';
import { RunRefusedError } from '../errors/run-refused.error';
import { UnknownJobError } from '../errors/unknown-job.error';
import { ParallelWorker } from '../parallel-worker';
import { redactSecrets } from '../redact-secrets';
import { DASHBOARD_CSS, DASHBOARD_JS } from './dashboard.assets';
import {
  type ControlBody,
  ControlRefused,
  DashboardControls,
} from './dashboard.controls';
import {
  DASHBOARD_HEADER,
  type ResolvedDashboardOptions,
} from './dashboard.options';
import {
  type DashboardRequest,
  sameOrigin,
  startedBy,
} from './dashboard.request';
import {
  renderButtons,
  renderDead,
  renderPage,
  renderRuns,
  renderStats,
} from './dashboard.view';
import {
  type Action,
  ACTIONS,
  actionsFor,
  byUrgency,
  type JobView,
  type PageOptions,
} from './dashboard.view-model';
import { RateHistory } from './rate-history';

const DASHBOARD_NO_WORKER =
  'ParallelWorkerDashboardModule: the dashboard cannot see ParallelWorker, so it has no jobs to show. ' +
  'Register the module as global, ParallelWorkerModule.forRoot({ isGlobal: true, … }) (or forRootAsync({ isGlobal: true, … })), ' +
  'or pass the module that imports and exports it: ParallelWorkerDashboardModule.register({ imports: [JobsModule] }).';

/** The dashboard's routes, mounted at the options' path, behind their guards. */
export function dashboardController(
  o: ResolvedDashboardOptions,
): Type<unknown> {
  @Controller(o.path)
  class ParallelWorkerDashboardController {
    private readonly worker: ParallelWorker;
    private readonly controls: DashboardControls;
    private readonly rates = new RateHistory();

    constructor(@Optional() @Inject(ParallelWorker) worker?: ParallelWorker) {
      // Nest's own error names only a missing dependency: this one says how to give it.
      if (!worker) throw new ParallelWorkerConfigError(DASHBOARD_NO_WORKER);
      this.worker = worker;
      this.controls = new DashboardControls(worker);
    }

    /** The page's options; `base` is where this request found the page (the app's global prefix included). */
    private page(request: DashboardRequest, below = ''): PageOptions {
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

    @Get()
    @Header('Content-Type', 'text/html; charset=utf-8')
    @Header('Cache-Control', 'no-store')
    async index(
      @Req() request: DashboardRequest,
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

    /** The live parts of every job, as HTML the script swaps in, and the jobs' order (running first). */
    @Get('live.json')
    @Header('Cache-Control', 'no-store')
    async live(
      @Req() request: DashboardRequest,
      @Query('job') job?: string,
      @Query('dead') dead?: string,
    ) {
      const page = this.page(request, '/live.json');
      const views = byUrgency(await this.views(job, dead));
      return {
        order: views.map((v) => v.status.job),
        jobs: Object.fromEntries(
          views.map((v) => [
            v.status.job,
            {
              stats: renderStats(v),
              runs: renderRuns(v),
              dead: renderDead(v, page),
              ...(o.controls && {
                buttons: renderButtons(v, page),
                canStart: actionsFor(v.status).includes('start'),
              }),
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
      @Req() request: DashboardRequest,
      @Body() body?: ControlBody,
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
        const message = await this.controls.act(
          job,
          action as Action,
          typeof body === 'object' && body !== null ? body : {},
          startedBy(request),
        );
        return { ok: true, message };
      } catch (e) {
        if (e instanceof ControlRefused)
          throw new HttpException(
            { statusCode: e.status, message: e.message },
            e.status,
          );
        if (e instanceof InvalidParamsError)
          throw new HttpException({ statusCode: 400, message: e.message }, 400);
        if (e instanceof RunRefusedError || e instanceof UnknownJobError)
          throw new HttpException({ statusCode: 409, message: e.message }, 409);
        throw e;
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
        // The newest record too when no runs are listed: an ended run's duration and average rate come from it.
        this.worker.history(job, { limit: Math.max(1, o.runs) }),
        this.worker.deadLetters(job, { offset, limit: o.deadPageSize }),
      ]);
      const lastRun = runs.find((r) => r.runId === status.runId);
      // Stored text may quote a connection string (a handler's error): shown without its secrets.
      const masked = runs.map((r) =>
        r.error ? { ...r, error: redactSecrets(r.error) } : r,
      );
      return {
        status: status.error
          ? { ...status, error: redactSecrets(status.error) }
          : status,
        traits: this.worker.traits(job),
        hosts,
        runs: masked.slice(0, o.runs),
        ...(lastRun && { lastRun }),
        samples: this.rates.observe(status),
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
