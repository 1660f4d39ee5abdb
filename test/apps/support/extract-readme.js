#!/usr/bin/env node
// Writes the README's examples, byte for byte, into an app of test/apps, so what
// run.sh runs is what the README shows (the README is only read, never changed):
//
//   "## Quick start", 1st ```ts block (starts `// app.module.ts`) -> src/quick-start/app.module.ts
//   "## Quick start", 2nd ```ts block (starts `// main.ts`)       -> src/quick-start/main.ts
//   "## Many hosts",  1st ```ts block (`export class AppModule`)  -> src/many-hosts/readme.module.ts
//   the Quick start's main.ts again                                -> src/many-hosts/main.ts
//   MANY_HOSTS_APP below (not README text)                         -> src/many-hosts/app.module.ts
//   "### Dashboard", 1st ```ts block (`export class AppModule`)   -> src/dashboard/readme.module.ts
//   DASHBOARD_APP below (not README text)                          -> src/dashboard/app.module.ts
//   DASHBOARD_MAIN below (not README text)                         -> src/dashboard/main.ts
//
// The Quick start's 3rd ts block (the HTTP app's main.ts) is not run as written: it
// listens on port 3000 with Nest's default (Express) adapter, and the dashboard step
// needs a free port and Express and Fastify, so DASHBOARD_MAIN is that file with
// those two changes. The only
// committed source of an app is src/quick-start/db.ts (the `./db` the README imports
// but leaves to the app). The Many hosts wrapper is written here, not committed,
// because the repository's tsconfig.json type-checks everything under test/ and the
// wrapper imports files that exist only after extraction. Fails, naming what it
// expected, if the README's layout changed.
//
// usage: node extract-readme.js <README.md> <app dir>
'use strict';
const { createHash } = require('node:crypto');
const { mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { basename, join } = require('node:path');

const [readmePath, appDir] = process.argv.slice(2);
if (!readmePath || !appDir) {
  console.error('usage: node extract-readme.js <README.md> <app dir>');
  process.exit(2);
}

function fail(message) {
  console.error(`extract-readme: ${message}`);
  process.exit(1);
}

/**
 * The `## ` sections of the README, each with its fenced code blocks (headings
 * inside fences ignored), keyed by title; and its `### ` subsections, keyed by
 * `### <title>` (a subsection's blocks are also its section's).
 */
function sections(text) {
  const lines = text.split('\n');
  const found = new Map();
  let section = null;
  let sub = null;
  let fence = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (fence) {
      if (/^```\s*$/.test(line)) {
        const block = {
          lang: fence.lang,
          line: fence.line,
          code: fence.lines.join('\n') + '\n',
        };
        section?.blocks.push(block);
        sub?.blocks.push(block);
        fence = null;
      } else fence.lines.push(line);
      continue;
    }
    const open = /^```(\S*)/.exec(line);
    if (open) {
      fence = { lang: open[1], line: i + 2, lines: [] };
      continue;
    }
    const heading = /^## (.+?)\s*$/.exec(line);
    if (heading) {
      section = { title: heading[1], line: i + 1, blocks: [] };
      sub = null;
      found.set(section.title, section);
    }
    const subHeading = /^### (.+?)\s*$/.exec(line);
    if (subHeading) {
      sub = { title: `### ${subHeading[1]}`, line: i + 1, blocks: [] };
      found.set(sub.title, sub);
    }
  }
  if (fence)
    fail(
      `a code block opened at README line ${fence.line - 1} is never closed`,
    );
  return found;
}

function tsBlocks(all, title, min) {
  const section = all.get(title);
  const heading = title.startsWith('### ') ? title : `## ${title}`;
  if (!section) fail(`no "${heading}" section in ${readmePath}`);
  const blocks = section.blocks.filter(
    (b) => b.lang === 'ts' || b.lang === 'typescript',
  );
  if (blocks.length < min)
    fail(
      `"${heading}" has ${blocks.length} ts code blocks, expected at least ${min}`,
    );
  return blocks;
}

function expect(block, what, ok) {
  if (!ok)
    fail(
      `the block at README line ${block.line} is not ${what}:\n${block.code}`,
    );
}

// The README's "Many hosts" block is a module with the store options only: what
// changes against the Quick start. The app is that module, unchanged, plus the
// Quick start's job provider and its Db; its main.ts is the Quick start's, unchanged.
const MANY_HOSTS_APP = `// Written by test/apps/support/extract-readme.js, not README text: the README's
// "Many hosts" AppModule (./readme.module.ts, unchanged) + the Quick start's job.
import { Module } from '@nestjs/common'
import { UsersBackfill } from '../quick-start/app.module'
import { Db } from '../quick-start/db'
import { AppModule as ManyHostsModule } from './readme.module'

@Module({
  imports: [ManyHostsModule],
  providers: [Db, UsersBackfill],
})
export class AppModule {}
`;

// The README's "Dashboard" block is an AppModule with the store and the page only.
// The app is that module, unchanged, plus the Quick start's job provider and its Db.
const DASHBOARD_APP = `// Written by test/apps/support/extract-readme.js, not README text: the README's
// "Dashboard" AppModule (./readme.module.ts, unchanged) + the Quick start's job.
import { Module } from '@nestjs/common'
import { UsersBackfill } from '../quick-start/app.module'
import { Db } from '../quick-start/db'
import { AppModule as DashboardModule } from './readme.module'

@Module({
  imports: [DashboardModule],
  providers: [Db, UsersBackfill],
})
export class AppModule {}
`;

// The Quick start's "main.ts of an HTTP app" with two changes: the adapter comes
// from PW_HTTP_ADAPTER (express, the default, or fastify) and the app listens on
// 127.0.0.1 at PORT (default 0: a free port), printing the URL for run.sh.
const DASHBOARD_MAIN = `// Written by test/apps/support/extract-readme.js, not README text: the README's
// "main.ts of an HTTP app" (Quick start) on the adapter PW_HTTP_ADAPTER names
// (express | fastify) and a free port (PORT, default 0) on 127.0.0.1.
import type { AddressInfo } from 'node:net'
import { NestFactory } from '@nestjs/core'
import { ExpressAdapter } from '@nestjs/platform-express'
import { FastifyAdapter } from '@nestjs/platform-fastify'
import { ParallelWorker } from 'nestjs-parallel-worker'
import { AppModule } from './app.module'

async function main() {
  const name = process.env.PW_HTTP_ADAPTER ?? 'express'
  if (name !== 'express' && name !== 'fastify') throw new Error(\`PW_HTTP_ADAPTER=\${name}: express or fastify\`)
  const app = await NestFactory.create(AppModule, name === 'fastify' ? new FastifyAdapter() : new ExpressAdapter())
  if (ParallelWorker.isWorker()) {
    await app.get(ParallelWorker).run() // serve ranges, then close: no port is opened in a worker
    return app.close()
  }
  await app.listen(Number(process.env.PORT ?? 0), '127.0.0.1')
  const { port } = app.getHttpServer().address() as AddressInfo
  console.log(\`dashboard app (\${name}) listening on http://127.0.0.1:\${port}\`)
}
void main()
`;

const all = sections(readFileSync(readmePath, 'utf8'));
const [quickModule, quickMain] = tsBlocks(all, 'Quick start', 2);
const [manyModule] = tsBlocks(all, 'Many hosts', 1);
const [dashboardModule] = tsBlocks(all, '### Dashboard', 1);

expect(
  quickModule,
  'the Quick start app.module.ts',
  /^\/\/ app\.module\.ts\b/.test(quickModule.code) &&
    /export class AppModule\b/.test(quickModule.code) &&
    /@RangeLoader\(/.test(quickModule.code) &&
    /@RangeHandler\(/.test(quickModule.code),
);
expect(
  quickMain,
  'the Quick start main.ts',
  /^\/\/ main\.ts\b/.test(quickMain.code) &&
    /from '\.\/app\.module'/.test(quickMain.code),
);
expect(
  manyModule,
  'the Many hosts AppModule',
  /export class AppModule\b/.test(manyModule.code) &&
    /ParallelWorkerModule\./.test(manyModule.code),
);

expect(
  dashboardModule,
  'the Dashboard AppModule',
  /export class AppModule\b/.test(dashboardModule.code) &&
    /from 'nestjs-parallel-worker\/dashboard'/.test(dashboardModule.code) &&
    /ParallelWorkerDashboardModule\.register\(/.test(dashboardModule.code) &&
    /path: 'jobs'/.test(dashboardModule.code) &&
    /controls: true/.test(dashboardModule.code) &&
    /isGlobal: true/.test(dashboardModule.code),
);

const files = [
  ['src/quick-start/app.module.ts', quickModule, 'Quick start, ts block 1'],
  ['src/quick-start/main.ts', quickMain, 'Quick start, ts block 2'],
  ['src/many-hosts/readme.module.ts', manyModule, 'Many hosts, ts block 1'],
  ['src/many-hosts/main.ts', quickMain, 'Quick start, ts block 2'],
  [
    'src/many-hosts/app.module.ts',
    { code: MANY_HOSTS_APP },
    'not from the README: its Many hosts module + the Quick start job',
  ],
  ['src/dashboard/readme.module.ts', dashboardModule, 'Dashboard, ts block 1'],
  [
    'src/dashboard/app.module.ts',
    { code: DASHBOARD_APP },
    'not from the README: its Dashboard module + the Quick start job',
  ],
  [
    'src/dashboard/main.ts',
    { code: DASHBOARD_MAIN },
    'not from the README: its HTTP main.ts on a chosen adapter and a free port',
  ],
];
for (const [file, block, from] of files) {
  const path = join(appDir, file);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, block.code);
  const sha = createHash('sha256')
    .update(block.code)
    .digest('hex')
    .slice(0, 12);
  const source = block.line
    ? `${basename(readmePath)} line ${block.line} (${from}`
    : `(${from}`;
  console.log(
    `extract-readme: ${file} <- ${source}, ${block.code.split('\n').length - 1} lines, sha256 ${sha})`,
  );
}
