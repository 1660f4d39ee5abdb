import {
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import * as ts from 'typescript';

const root = join(__dirname, '../..');

/** README.md and every page of docs/, as paths from the repository root. */
function docPages(): string[] {
  return [
    'README.md',
    ...readdirSync(join(root, 'docs'))
      .filter((file) => file.endsWith('.md'))
      .sort()
      .map((file) => `docs/${file}`),
  ];
}

// The examples import their neighbours: ./db.js (a database helper) and ./app.module.js,
// which a page may leave to the reader.
const STUB_DB =
  'export class Db { async query<T = unknown>(_sql: string, _params: unknown[] = []): Promise<T[]> { return [] } }\n';
const STUB_APP_MODULE = 'export class AppModule {}\n';

/** `// users-backfill.ts: …` names the file a block is; a block without a name is a file of its own. */
const fileName = (code: string) =>
  /^\/\/ ([\w.-]+\.ts)\b/.exec(code)?.[1] ?? null;

/**
 * The TypeScript examples of the README and docs/ compile as written (against lib/),
 * in a CommonJS app (the repository's tsconfig) and in an ESM app as today's
 * `nest new` makes it ("type": "module", `module`/`moduleResolution` nodenext),
 * where a relative import needs its `.js` extension.
 * Named blocks of one page build one project, in order (the Quick start's db.ts,
 * job, app.module.ts, main.ts): a name seen again starts a copy of the project with
 * that file replaced, so a later main.ts still sees the app.module.ts before it.
 */
describe('README and docs examples', () => {
  const dir = join(root, 'test/.readme');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes the blocks under `dir/<kind>` (with that package.json); returns the files to compile. */
  function writeExamples(kind: string, packageJson?: object): string[] {
    const base = join(dir, kind);
    rmSync(base, { recursive: true, force: true });
    mkdirSync(base, { recursive: true });
    if (packageJson)
      writeFileSync(join(base, 'package.json'), JSON.stringify(packageJson));
    const files: string[] = [];
    let folders = 0;
    const writeFolder = (project: Map<string, string>) => {
      const folder = join(base, `example-${folders++}`);
      mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, 'db.ts'), STUB_DB);
      writeFileSync(join(folder, 'app.module.ts'), STUB_APP_MODULE);
      for (const [name, code] of project)
        writeFileSync(join(folder, name), code);
      return folder;
    };
    const counts: Record<string, number> = {};
    for (const page of docPages()) {
      const blocks = [
        ...readFileSync(join(root, page), 'utf8').matchAll(
          /```ts\n([\s\S]*?)```/g,
        ),
      ]
        .map((m) => m[1])
        .filter((code) => code.includes('import '));
      counts[page] = blocks.length;
      let project = new Map<string, string>();
      let folder = '';
      for (const code of blocks) {
        const name = fileName(code);
        if (!name) {
          const file = code.includes('export class AppModule')
            ? 'app.module.ts'
            : 'main.ts';
          files.push(join(writeFolder(new Map([[file, code]])), file));
          continue;
        }
        if (!folder || project.has(name)) {
          project = new Map(project);
          project.set(name, code);
          folder = writeFolder(project);
        } else {
          project.set(name, code);
          writeFileSync(join(folder, name), code);
        }
        files.push(join(folder, name));
      }
    }
    // The Quick start alone is 4 files (db.ts, the job, app.module.ts, main.ts) and the @Cron version 2.
    expect(counts['README.md']).toBeGreaterThanOrEqual(6);
    expect(files.length).toBeGreaterThanOrEqual(14);
    return files;
  }

  function typeErrors(
    files: string[],
    overrides: ts.CompilerOptions = {},
  ): string[] {
    const config = ts.getParsedCommandLineOfConfigFile(
      join(root, 'tsconfig.json'),
      {},
      { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined },
    )!;
    const program = ts.createProgram(files, {
      ...config.options,
      ...overrides,
      noEmit: true,
    });
    return ts
      .getPreEmitDiagnostics(program)
      .map(
        (d) =>
          `${d.file?.fileName}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`,
      );
  }

  it('type-check in a CommonJS app', () => {
    expect(typeErrors(writeExamples('cjs'))).toEqual([]);
  });

  it('type-check in an ESM app ("type": "module", nodenext)', () => {
    const files = writeExamples('esm', { type: 'module' });
    expect(
      typeErrors(files, {
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
      }),
    ).toEqual([]);
  });
});
