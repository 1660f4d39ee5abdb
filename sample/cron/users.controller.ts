import {
  BadRequestException,
  Controller,
  DefaultValuePipe,
  Get,
  ParseIntPipe,
  Post,
  Query,
} from '@nestjs/common';
import { ParallelWorker, type JobStatus } from 'nestjs-parallel-worker';
import { UsersTable } from '../users';

/** Progress of the `users` job, and a way to give the next run some work. */
@Controller()
export class UsersController {
  constructor(
    private readonly worker: ParallelWorker,
    private readonly users: UsersTable,
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
}
