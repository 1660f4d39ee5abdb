#!/usr/bin/env node
// Checks what `npm pack` would publish (run it after `npm run build`): only the
// files we mean to ship, source maps that work from the installed package,
// small declaration files, README links that resolve inside the package, and
// the entry points package.json names. Plain Node, no dependencies.
'use strict';

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
process.chdir(root);

// Everything the package may contain: dist/ plus these files.
const SHIPPED_FILES = new Set([
  'package.json',
  'README.md',
  'LICENSE',
  'CHANGELOG.md',
  'bench/results.svg',
  'docs/dashboard.png',
]);
const SHIPPED_DIRS = ['dist/'];
// The guide: every page of docs/ (the README links them), nothing else from there.
const SHIPPED_PATTERNS = [/^docs\/[\w-]+\.md$/];
// Linked from the README for readers of the repository, deliberately not shipped.
const REPOSITORY_ONLY_LINKS = new Set(['CONTRIBUTING.md']);
const MAX_DTS_BYTES = 20_000;

const problems = [];
const fail = (message) => problems.push(message);

function npmPack() {
  const args = ['pack', '--dry-run', '--json', '--ignore-scripts'];
  // Under `npm run`, npm_execpath is npm's own CLI script: run it with this node (works on Windows too).
  const execPath = process.env.npm_execpath;
  const useExecPath = execPath && /npm-cli\.js$/.test(execPath);
  const output = useExecPath
    ? execFileSync(process.execPath, [execPath, ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      })
    : execFileSync('npm', args, {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        shell: process.platform === 'win32',
      });
  const start = output.indexOf('[');
  if (start < 0)
    throw new Error(`npm pack --dry-run --json printed no JSON:\n${output}`);
  return JSON.parse(output.slice(start))[0];
}

let pack;
try {
  pack = npmPack();
} catch (error) {
  console.error(
    `pack check: could not run npm pack --dry-run: ${error.message}`,
  );
  process.exit(1);
}

const files = new Map(
  pack.files.map((file) => [file.path.split(path.sep).join('/'), file]),
);
const shipped = (file) => files.has(file);
const shippedDir = (dir) =>
  [...files.keys()].some((file) =>
    file.startsWith(dir.endsWith('/') ? dir : `${dir}/`),
  );
const read = (file) => fs.readFileSync(path.join(root, file), 'utf8');
// A path relative to a shipped file, as a package path ('' when it leaves the package).
const resolveFrom = (file, target) => {
  const resolved = path.posix.normalize(
    path.posix.join(path.posix.dirname(file), decodeURI(target)),
  );
  return resolved.startsWith('../') || resolved === '..'
    ? ''
    : resolved.replace(/^\.\//, '');
};

if (!fs.existsSync(path.join(root, 'dist'))) {
  console.error('pack check: dist/ is missing: run `npm run build` first.');
  process.exit(1);
}

// 1. Only the files we mean to ship.
for (const file of files.keys()) {
  if (
    !SHIPPED_FILES.has(file) &&
    !SHIPPED_DIRS.some((dir) => file.startsWith(dir)) &&
    !SHIPPED_PATTERNS.some((pattern) => pattern.test(file))
  ) {
    fail(
      `${file}: not meant to be in the package (only ${SHIPPED_DIRS.join(', ')}, docs/*.md and ${[...SHIPPED_FILES].join(', ')})`,
    );
  }
}

// 2. No TypeScript sources, only declarations.
for (const file of files.keys()) {
  if (/\.[cm]?tsx?$/.test(file) && !/\.d\.[cm]?ts$/.test(file))
    fail(
      `${file}: a TypeScript source is shipped (only .d.ts belongs in the package)`,
    );
}

// 3. Source maps: every .js.map carries its sources (the .ts files are not shipped) and maps a shipped file;
//    declaration maps may only point at shipped files; every sourceMappingURL resolves.
for (const file of files.keys()) {
  if (!file.endsWith('.map')) continue;
  let map;
  try {
    map = JSON.parse(read(file));
  } catch (error) {
    fail(`${file}: not valid JSON (${error.message})`);
    continue;
  }
  const sources = Array.isArray(map.sources) ? map.sources : [];
  const generated = file.slice(0, -'.map'.length);
  if (!shipped(generated))
    fail(`${file}: maps ${generated}, which is not in the package`);
  if (map.file && resolveFrom(file, map.file) !== generated)
    fail(`${file}: its "file" (${map.file}) is not ${generated}`);
  const isDeclarationMap = /\.d\.[cm]?ts\.map$/.test(file);
  sources.forEach((source, index) => {
    const target = resolveFrom(
      file,
      path.posix.join(map.sourceRoot || '', source),
    );
    if (target && shipped(target)) return;
    if (isDeclarationMap) {
      fail(
        `${file}: points at ${source}, which is not in the package (ship no declaration maps, or ship their sources)`,
      );
    } else if (
      !Array.isArray(map.sourcesContent) ||
      typeof map.sourcesContent[index] !== 'string'
    ) {
      fail(
        `${file}: lacks sourcesContent for ${source}, which is not in the package (set "inlineSources": true in tsconfig.build.json)`,
      );
    }
  });
  if (!isDeclarationMap && sources.length === 0)
    fail(`${file}: has no sources`);
}
for (const file of files.keys()) {
  if (!/\.(?:[cm]?js|d\.[cm]?ts)$/.test(file)) continue;
  const match = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(read(file));
  if (!match || match[1].startsWith('data:')) continue;
  const target = resolveFrom(file, match[1]);
  if (!target || !shipped(target))
    fail(`${file}: its sourceMappingURL (${match[1]}) is not in the package`);
}

// 4. Small declaration files (a huge one usually means a big literal type, e.g. a script as a string literal).
for (const [file, { size }] of files) {
  if (/\.d\.[cm]?ts$/.test(file) && size > MAX_DTS_BYTES) {
    fail(
      `${file}: ${size} bytes, over ${MAX_DTS_BYTES} (a huge literal type? annotate the constant, e.g. \`: string\`)`,
    );
  }
}

// 5. Links of the README and the guide (docs/*.md) that resolve inside the package (npm shows only what is shipped).
for (const page of [...files.keys()].filter((file) => file.endsWith('.md'))) {
  const text = read(page)
    .replace(/^ {0,3}(`{3,}|~{3,})[^\n]*\n[\s\S]*?^ {0,3}\1[^\n]*$/gm, '') // fenced code blocks
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/(`+)[\s\S]*?\1/g, ''); // code spans
  const targets = new Set();
  for (const match of text.matchAll(
    /\]\(\s*<?([^\s)>]+)>?(?:\s+["'(][^)]*)?\)/g,
  ))
    targets.add(match[1]); // [x](t), ![x](t)
  for (const match of text.matchAll(
    /^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm,
  ))
    targets.add(match[1]); // [x]: t
  for (const match of text.matchAll(
    /<(?:a|img|source)\b[^>]*?\s(?:href|src|srcset)\s*=\s*["']([^"']+)["']/gi,
  ))
    targets.add(match[1]);
  for (const target of targets) {
    if (/^(?:[a-z][a-z0-9+.-]*:|\/\/|#)/i.test(target)) continue; // absolute URLs, anchors
    const file = resolveFrom(page, target.replace(/[?#].*$/, ''));
    if (REPOSITORY_ONLY_LINKS.has(file)) continue;
    if (!file || !(shipped(file) || shippedDir(file))) {
      fail(
        `${page}: links ${target}, which is not in the package (inline it as text, or add it to "files")`,
      );
    }
  }
}

// 6. Entry points: main, types, exports, bin, the CLI's shebang.
const pkg = JSON.parse(read('package.json'));
const entryPoints = new Set(['dist/index.js', 'dist/cli/main.js']);
const addEntry = (target, from) => {
  if (typeof target === 'string' && !target.includes('*'))
    entryPoints.add(path.posix.normalize(target).replace(/^\.\//, ''));
  else if (target && typeof target === 'object')
    for (const value of Object.values(target)) addEntry(value, from);
};
addEntry(pkg.main, 'main');
addEntry(pkg.types, 'types');
addEntry(pkg.exports, 'exports');
addEntry(typeof pkg.bin === 'string' ? pkg.bin : pkg.bin || {}, 'bin');
for (const file of entryPoints)
  if (!shipped(file))
    fail(
      `${file}: named by package.json (main/types/exports/bin) but not in the package`,
    );
for (const file of new Set([
  'dist/cli/main.js',
  ...Object.values(
    typeof pkg.bin === 'string' ? { bin: pkg.bin } : pkg.bin || {},
  ),
])) {
  const normalized = path.posix.normalize(file).replace(/^\.\//, '');
  if (
    shipped(normalized) &&
    !read(normalized).startsWith('#!/usr/bin/env node\n')
  )
    fail(`${normalized}: a bin without the \`#!/usr/bin/env node\` shebang`);
}

// 7. dist/ is a clean build of lib/ (nothing left over from deleted sources, nothing missing).
if (fs.existsSync(path.join(root, 'lib'))) {
  const walk = (dir) =>
    fs
      .readdirSync(dir, { withFileTypes: true })
      .flatMap((entry) =>
        entry.isDirectory()
          ? walk(path.join(dir, entry.name))
          : [path.join(dir, entry.name)],
      );
  const sources = new Set(
    walk(path.join(root, 'lib'))
      .map((file) =>
        path.relative(path.join(root, 'lib'), file).split(path.sep).join('/'),
      )
      .filter((file) => /\.ts$/.test(file) && !/\.d\.ts$/.test(file))
      .map((file) => file.replace(/\.ts$/, '')),
  );
  for (const file of files.keys()) {
    const match = /^dist\/(.+?)(?:\.d\.ts|\.js\.map|\.js)$/.exec(file);
    if (match && !sources.has(match[1]))
      fail(
        `${file}: no lib/${match[1]}.ts (left over from an old build? \`npm run build\` starts from an empty dist/)`,
      );
  }
  for (const source of sources)
    if (!shipped(`dist/${source}.js`))
      fail(
        `lib/${source}.ts: not built to dist/${source}.js (run \`npm run build\`)`,
      );
}

const kB = (bytes) => `${(bytes / 1000).toFixed(1)} kB`;
if (problems.length > 0) {
  console.error(
    `pack check FAILED: ${problems.length} problem(s) in ${pack.filename}:`,
  );
  for (const problem of problems) console.error(`  - ${problem}`);
  process.exit(1);
}
console.log(
  `pack check ok: ${pack.filename}: ${pack.entryCount} files, ${kB(pack.size)} packed, ${kB(pack.unpackedSize)} unpacked`,
);
