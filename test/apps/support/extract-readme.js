#!/usr/bin/env node
// Writes the examples of the README and docs/, byte for byte, into an app of test/apps,
// so what run.sh runs is what the docs show (they are only read, never changed):
//
//   README "## Quick start", the ```sql block (CREATE TABLE users)   -> src/quick-start/users.sql
//   README "## Quick start", each ```ts block, by the file its first   -> src/quick-start/<file>
//     line names (`// db.ts`, `// users-backfill.ts`, `// app.module.ts`, `// main.ts`)
//   docs/many-hosts.md "# Many hosts", 1st ```ts block (`export class AppModule`)
//                                                                      -> src/many-hosts/readme.module.ts
//   the Quick start's main.ts again                                    -> src/many-hosts/main.ts
//   MANY_HOSTS_APP below (not docs text)                               -> src/many-hosts/app.module.ts
//   docs/operating.md "## Dashboard", 1st ```ts block (`export class AppModule`)
//                                                                      -> src/dashboard/readme.module.ts
//   DASHBOARD_APP below (not docs text)                                -> src/dashboard/app.module.ts
//   DASHBOARD_MAIN below (not docs text)                               -> src/dashboard/main.ts
//
// support/fixture.js seeds the table with users.sql. The README's "main.ts of an HTTP
// app" (its @Cron section) is not run as written: it listens on port 3000 with Nest's
// default (Express) adapter, and the dashboard step needs a free port and Express and
// Fastify, so DASHBOARD_MAIN is that file with those two changes. No source of an app
// is committed: the Quick start shows every file it needs, its Db provider too. The
// wrappers are written here, not committed, because the repository's tsconfig.json
// type-checks everything under test/ and they import files that exist only after
// extraction. Fails, naming what it expected, if the layout of the docs changed.
//
// The same files serve the CommonJS apps (nest11, nest12) and the ESM one (nest12-esm:
// "type": "module", nodenext): like the docs, the wrappers write relative imports
// with their `.js` extension, which TypeScript resolves to the .ts file in both and
// which Node needs in ESM.
//
// usage: node extract-readme.js <README.md> <app dir>     (docs/ is the one next to README.md)
'use strict';
const { createHash } = require('node:crypto');
const { mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { basename, dirname, join, relative } = require('node:path');

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
 * The headed parts of a Markdown file, each with its fenced code blocks (headings
 * inside fences ignored), keyed by heading (`## Quick start`); a part's blocks are
 * also those of the parts it lies in (`# Many hosts` holds its `## …` parts' blocks).
 */
function sections(path) {
  const lines = readFileSync(path, 'utf8').split('\n');
  const found = new Map();
  const open = []; // the parts the current line lies in, outermost first
  let fence = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (fence) {
      if (/^```\s*$/.test(line)) {
        const block = {
          path,
          lang: fence.lang,
          line: fence.line,
          code: fence.lines.join('\n') + '\n',
        };
        for (const part of open) part.blocks.push(block);
        fence = null;
      } else fence.lines.push(line);
      continue;
    }
    const opening = /^```(\S*)/.exec(line);
    if (opening) {
      fence = { lang: opening[1], line: i + 2, lines: [] };
      continue;
    }
    const heading = /^(#{1,6}) (.+?)\s*$/.exec(line);
    if (heading) {
      const level = heading[1].length;
      while (open.length && open[open.length - 1].level >= level) open.pop();
      const part = { title: `${heading[1]} ${heading[2]}`, level, blocks: [] };
      open.push(part);
      found.set(part.title, part);
    }
  }
  if (fence)
    fail(
      `a code block opened at ${path} line ${fence.line - 1} is never closed`,
    );
  return found;
}

function blocksOf(path, heading, langs, min) {
  const part = sections(path).get(heading);
  if (!part) fail(`no "${heading}" heading in ${path}`);
  const blocks = part.blocks.filter((b) => langs.includes(b.lang));
  if (blocks.length < min)
    fail(
      `"${heading}" in ${path} has ${blocks.length} ${langs[0]} code blocks, expected at least ${min}`,
    );
  return blocks;
}
const tsBlocks = (path, heading, min) =>
  blocksOf(path, heading, ['ts', 'typescript'], min);

function expect(block, what, ok) {
  if (!ok)
    fail(
      `the block at ${block.path} line ${block.line} is not ${what}:\n${block.code}`,
    );
}

// The "Many hosts" block (docs/many-hosts.md) is a module with the store options only: what
// changes against the Quick start. The app is that module, unchanged, plus the
// Quick start's job provider and its Db; its main.ts is the Quick start's, unchanged.
const MANY_HOSTS_APP = `// Written by test/apps/support/extract-readme.js, not docs text: the
// "Many hosts" AppModule of docs/many-hosts.md (./readme.module.ts, unchanged) + the Quick start's job.
import { Module } from '@nestjs/common'
import { Db } from '../quick-start/db.js'
import { UsersBackfill } from '../quick-start/users-backfill.js'
import { AppModule as ManyHostsModule } from './readme.module.js'

@Module({
  imports: [ManyHostsModule],
  providers: [Db, UsersBackfill],
})
export class AppModule {}
`;

// The "Dashboard" block (docs/operating.md) is an AppModule with the store and the page only.
// The app is that module, unchanged, plus the Quick start's job provider and its Db.
const DASHBOARD_APP = `// Written by test/apps/support/extract-readme.js, not docs text: the
// "Dashboard" AppModule of docs/operating.md (./readme.module.ts, unchanged) + the Quick start's job.
import { Module } from '@nestjs/common'
import { Db } from '../quick-start/db.js'
import { UsersBackfill } from '../quick-start/users-backfill.js'
import { AppModule as DashboardModule } from './readme.module.js'

@Module({
  imports: [DashboardModule],
  providers: [Db, UsersBackfill],
})
export class AppModule {}
`;

// The README's "main.ts of an HTTP app" with two changes: the adapter comes
// from PW_HTTP_ADAPTER (express, the default, or fastify) and the app listens on
// 127.0.0.1 at PORT (default 0: a free port), printing the URL for run.sh.
const DASHBOARD_MAIN = `// Written by test/apps/support/extract-readme.js, not README text: the README's
// "main.ts of an HTTP app" (its @Cron section) on the adapter PW_HTTP_ADAPTER names
// (express | fastify) and a free port (PORT, default 0) on 127.0.0.1.
import type { AddressInfo } from 'node:net'
import { NestFactory } from '@nestjs/core'
import { ExpressAdapter } from '@nestjs/platform-express'
import { FastifyAdapter } from '@nestjs/platform-fastify'
import { ParallelWorker } from 'nestjs-parallel-worker'
import { AppModule } from './app.module.js'

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

const docsDir = join(dirname(readmePath), 'docs');
const manyHostsPath = join(docsDir, 'many-hosts.md');
const operatingPath = join(docsDir, 'operating.md');
const [usersTable] = blocksOf(readmePath, '## Quick start', ['sql'], 1);
const quickFiles = new Map();
for (const block of tsBlocks(readmePath, '## Quick start', 4)) {
  const name = /^\/\/ ([\w.-]+\.ts)\b/.exec(block.code)?.[1];
  expect(
    block,
    'a file of the Quick start (a first line `// <file>.ts`)',
    name,
  );
  expect(block, `the only ${name} of the Quick start`, !quickFiles.has(name));
  quickFiles.set(name, block);
}
for (const name of ['db.ts', 'users-backfill.ts', 'app.module.ts', 'main.ts'])
  if (!quickFiles.has(name))
    fail(
      `the "## Quick start" of ${readmePath} has no \`// ${name}\` block (it has ${[...quickFiles.keys()].join(', ')})`,
    );
const quickModule = quickFiles.get('app.module.ts');
const quickMain = quickFiles.get('main.ts');
const [manyModule] = tsBlocks(manyHostsPath, '# Many hosts', 1);
const [dashboardModule] = tsBlocks(operatingPath, '## Dashboard', 1);

expect(
  usersTable,
  'the users table the Quick start works on',
  /CREATE TABLE users\b/.test(usersTable.code),
);
expect(
  quickFiles.get('db.ts'),
  'the Quick start Db provider',
  /export class Db\b/.test(quickFiles.get('db.ts').code),
);
expect(
  quickFiles.get('users-backfill.ts'),
  'the Quick start job',
  /export class UsersBackfill\b/.test(
    quickFiles.get('users-backfill.ts').code,
  ) &&
    /@RangeLoader\(/.test(quickFiles.get('users-backfill.ts').code) &&
    /@RangeHandler\(/.test(quickFiles.get('users-backfill.ts').code),
);
expect(
  quickModule,
  'the Quick start app.module.ts',
  /export class AppModule\b/.test(quickModule.code),
);
expect(
  quickMain,
  'the Quick start main.ts',
  /from '\.\/app\.module\.js'/.test(quickMain.code),
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
  ['src/quick-start/users.sql', usersTable, 'Quick start, sql block'],
  ...[...quickFiles].map(([name, block]) => [
    `src/quick-start/${name}`,
    block,
    `Quick start, ${name}`,
  ]),
  ['src/many-hosts/readme.module.ts', manyModule, 'Many hosts, ts block 1'],
  ['src/many-hosts/main.ts', quickMain, 'Quick start, main.ts'],
  [
    'src/many-hosts/app.module.ts',
    { code: MANY_HOSTS_APP },
    'not from the docs: its Many hosts module + the Quick start job',
  ],
  ['src/dashboard/readme.module.ts', dashboardModule, 'Dashboard, ts block 1'],
  [
    'src/dashboard/app.module.ts',
    { code: DASHBOARD_APP },
    'not from the docs: its Dashboard module + the Quick start job',
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
    ? `${relative(dirname(readmePath), block.path) || basename(block.path)} line ${block.line} (${from}`
    : `(${from}`;
  console.log(
    `extract-readme: ${file} <- ${source}, ${block.code.split('\n').length - 1} lines, sha256 ${sha})`,
  );
}
