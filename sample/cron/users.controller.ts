import {
  BadRequestException,
  ConflictException,
  Controller,
  DefaultValuePipe,
  Get,
  HttpCode,
  Logger,
  ParseIntPipe,
  Post,
  Query,
} from '@nestjs/common';
import { ParallelWorker, type JobStatus } from 'nestjs-parallel-worker';
import { UsersTable } from '../users';
import { UsersCron } from './users.cron';

/** Progress of the `users` job, a way to give the next run some work, and one to start it now. */
@Controller()
export class UsersController {
  private readonly logger = new Logger(UsersController.name);

  constructor(
    private readonly worker: ParallelWorker,
    private readonly users: UsersTable,
    private readonly cron: UsersCron,
  ) {}

  /** `GET /status`: state, cursor, ids and ranges done, rate. */
  @Get('status')
  status(): Promise<JobStatus> {
    return this.worker.status('users');
  }

  /** `POST /users?count=1000`: appends rows, which the next cron run picks up. */
  @Post('users')
  async add(
    @Query('count', new DefaultValuePipe(1000), ParseIntPipe) count: number,
  ) {
    if (count < 1) throw new BadRequestException('count must be at least 1');
    await this.users.append(count);
    return { added: count, total: await this.users.count() };
  }

  /** `POST /run`: starts a run now, as the next cron tick would (202), unless one is going (409). */
  @Post('run')
  @HttpCode(202)
  run() {
    if (this.cron.busy)
      throw new ConflictException('A run of "users" is already going.');
    // Not awaited: the run outlives the request; watch it on /jobs or /status.
    this.cron
      .runUsers()
      .catch((err: unknown) => this.logger.error(`users: ${String(err)}`));
    return { started: 'users' };
  }
}
