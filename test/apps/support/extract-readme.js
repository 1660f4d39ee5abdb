#!/usr/bin/env node
// Writes the README's examples, byte for byte, into an app of test/apps, so what
// run.sh runs is what the README shows (the README is only read, never changed):
//
//   "## Quick start", 1st ```ts block (starts `// app.module.ts`) -> src/quick-start/app.module.ts
//   "## Quick start", 2nd ```ts block (starts `// main.ts`)       -> src/quick-start/main.ts
//   "## Many hosts",  1st ```ts block (`export class AppModule`)  -> src/many-hosts/readme.module.ts
//   the Quick start's main.ts again                                -> src/many-hosts/main.ts
//   MANY_HOSTS_APP below (not README text)                         -> src/many-hosts/app.module.ts
//
// The Quick start's 3rd ts block (the HTTP app's main.ts) is not run. The only
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

/** The `## ` sections of the README, each with its fenced code blocks (headings inside fences ignored). */
function sections(text) {
  const lines = text.split('\n');
  const found = new Map();
  let section = null;
  let fence = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (fence) {
      if (/^```\s*$/.test(line)) {
        section?.blocks.push({
          lang: fence.lang,
          line: fence.line,
          code: fence.lines.join('\n') + '\n',
        });
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
      found.set(section.title, section);
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
  if (!section) fail(`no "## ${title}" section in ${readmePath}`);
  const blocks = section.blocks.filter(
    (b) => b.lang === 'ts' || b.lang === 'typescript',
  );
  if (blocks.length < min)
    fail(
      `"## ${title}" has ${blocks.length} ts code blocks, expected at least ${min}`,
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

const all = sections(readFileSync(readmePath, 'utf8'));
const [quickModule, quickMain] = tsBlocks(all, 'Quick start', 2);
const [manyModule] = tsBlocks(all, 'Many hosts', 1);

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
