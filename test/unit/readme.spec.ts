import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ts from 'typescript';

const root = join(__dirname, '../..');

/** The README's TypeScript examples compile as written (against lib/, with a small `Db` for `./db`). */
describe('README examples', () => {
  const dir = join(root, 'test/.readme');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('type-check', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)]
      .map((m) => m[1])
      .filter((code) => code.includes('import '));
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    rmSync(dir, { recursive: true, force: true });
    const files = blocks.map((code, i) => {
      const folder = join(dir, `example-${i}`);
      mkdirSync(folder, { recursive: true });
      // The examples import their neighbours: ./db (a database helper) and ./app.module.
      writeFileSync(
        join(folder, 'db.ts'),
        'export class Db { async query<T = unknown>(_sql: string, _params: unknown[] = []): Promise<T[]> { return [] } }\n',
      );
      if (!code.includes('export class AppModule'))
        writeFileSync(
          join(folder, 'app.module.ts'),
          'export class AppModule {}\n',
        );
      const file = join(
        folder,
        code.includes('export class AppModule') ? 'app.module.ts' : 'main.ts',
      );
      writeFileSync(file, code);
      return file;
    });
    const config = ts.getParsedCommandLineOfConfigFile(
      join(root, 'tsconfig.json'),
      {},
      { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined },
    )!;
    const program = ts.createProgram(files, {
      ...config.options,
      noEmit: true,
    });
    const errors = ts
      .getPreEmitDiagnostics(program)
      .map(
        (d) =>
          `${d.file?.fileName}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`,
      );
    expect(errors).toEqual([]);
  });
});
