#!/usr/bin/env node
// Commit subjects (as commitlint's header-max-length would): conventional type, at most 100 characters.
// Checks the commits after BASELINE, the commit that added this check: older subjects stay as history wrote them.
'use strict';

const { execFileSync } = require('node:child_process');

const BASELINE = process.env.COMMITS_SINCE || 'db8417d';
const MAX = 100;
const TYPE =
  /^(build|chore|ci|docs|feat|fix|perf|refactor|revert|style|test)(\([\w./-]+\))?!?: \S/;

let range = `${BASELINE}..HEAD`;
try {
  execFileSync('git', ['cat-file', '-e', `${BASELINE}^{commit}`], {
    stdio: 'ignore',
  });
} catch {
  // A shallow clone without the baseline: check the newest commit only.
  range = '-1';
}
const log = execFileSync('git', ['log', '--format=%h %s', range], {
  encoding: 'utf8',
}).trim();
const bad = [];
for (const line of log ? log.split('\n') : []) {
  const [hash, ...rest] = line.split(' ');
  const subject = rest.join(' ');
  if (subject.length > MAX)
    bad.push(
      `${hash} is ${subject.length} characters (max ${MAX}): ${subject}`,
    );
  else if (!TYPE.test(subject))
    bad.push(
      `${hash} is not "type(scope): subject" (conventional commits): ${subject}`,
    );
}
if (bad.length) {
  process.stderr.write(`Commit subjects to fix:\n  ${bad.join('\n  ')}\n`);
  process.exit(1);
}
process.stdout.write(
  `commit subjects ok: ${log ? log.split('\n').length : 0} since ${BASELINE}\n`,
);
