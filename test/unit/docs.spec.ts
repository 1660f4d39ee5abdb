import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import * as ts from 'typescript';
import { resolveOptions } from '../../lib/parallel-worker.options';

const root = join(__dirname, '../..');
const read = (file: string) => readFileSync(join(root, file), 'utf8');
const pages = [
  'README.md',
  'CONTRIBUTING.md',
  ...readdirSync(join(root, 'docs'))
    .filter((file) => file.endsWith('.md'))
    .map((file) => `docs/${file}`),
];

/** Markdown without fenced code blocks (headings and links inside them are not headings and links). */
const prose = (text: string) =>
  text.replace(/^ {0,3}(`{3,})[^\n]*\n[\s\S]*?^ {0,3}\1[^\n]*$/gm, '');

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const found = new Set<string>();
  for (const [, heading] of prose(read(file)).matchAll(/^#{1,6} (.+)$/gm)) {
    const base = slug(heading);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    found.add(n ? `${base}-${n}` : base);
  }
  return found;
}

/** The cells of a Markdown table row (an escaped `\|` stays in its cell). */
const cells = (row: string) =>
  row
    .trim()
    .replace(/^\||\|$/g, '')
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim());

/** The value of a literal written in the docs (`10_000`, `'info'`, `{ enabled: true }`), or `undefined` for anything else. */
function literal(text: string): { value: unknown } | undefined {
  const source = ts.createSourceFile(
    'x.ts',
    `(${text})`,
    ts.ScriptTarget.Latest,
  );
  const statement = source.statements[0];
  if (source.statements.length !== 1 || !ts.isExpressionStatement(statement))
    return undefined;
  const value = (node: ts.Expression): { value: unknown } | undefined => {
    if (ts.isParenthesizedExpression(node)) return value(node.expression);
    if (ts.isNumericLiteral(node)) return { value: Number(node.text) };
    if (ts.isStringLiteral(node)) return { value: node.text };
    if (node.kind === ts.SyntaxKind.TrueKeyword) return { value: true };
    if (node.kind === ts.SyntaxKind.FalseKeyword) return { value: false };
    if (ts.isObjectLiteralExpression(node)) {
      const object: Record<string, unknown> = {};
      for (const property of node.properties) {
        if (!ts.isPropertyAssignment(property)) return undefined;
        const inner = value(property.initializer);
        if (!inner) return undefined;
        object[property.name.getText(source)] = inner.value;
      }
      return { value: object };
    }
    return undefined;
  };
  return value(statement.expression);
}

/** The members of `ParallelWorkerOptions` with their JSDoc, and the levels of `ParallelWorkerLogLevel`. */
function optionsInterface() {
  const file = 'lib/interfaces/parallel-worker-options.interface.ts';
  const source = ts.createSourceFile(
    file,
    read(file),
    ts.ScriptTarget.Latest,
    true,
  );
  const members = new Map<string, string>();
  let levels: string[] = [];
  source.forEachChild((node) => {
    if (
      ts.isInterfaceDeclaration(node) &&
      node.name.text === 'ParallelWorkerOptions'
    )
      for (const member of node.members)
        members.set(
          member.name!.getText(source),
          ts
            .getJSDocCommentsAndTags(member)
            .map((doc) => doc.getText(source))
            .join('\n'),
        );
    if (
      ts.isTypeAliasDeclaration(node) &&
      node.name.text === 'ParallelWorkerLogLevel'
    )
      levels = (node.type as ts.UnionTypeNode).types.map((type) =>
        JSON.parse(type.getText(source).replace(/'/g, '"')),
      );
  });
  return { members, levels };
}

/** The table of docs/options.md: option name, its default cell, its meaning cell. */
function optionsTable() {
  const lines = read('docs/options.md').split('\n');
  const header = lines.findIndex((line) =>
    /^\| option \| default \| meaning \|$/.test(line),
  );
  expect(header).toBeGreaterThanOrEqual(0);
  const rows: { option: string; defaultCell: string; meaning: string }[] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    const [name, defaultCell, meaning] = cells(line);
    const option = /^`(\w+)`$/.exec(name)?.[1];
    if (!option)
      throw new Error(`docs/options.md: a row names no single option: ${line}`);
    rows.push({ option, defaultCell, meaning });
  }
  return rows;
}

/** The first code span of a cell, as a literal, if it is one. */
const defaultOf = (cell: string) => {
  const span = /`([^`]+)`/.exec(cell)?.[1];
  return span === undefined ? undefined : literal(span);
};

describe('docs', () => {
  it('every relative link of the README, CONTRIBUTING.md and docs/ reaches a file and a heading', () => {
    const broken: string[] = [];
    for (const page of pages) {
      const text = prose(read(page)).replace(/(`+)[\s\S]*?\1/g, '');
      for (const [, target] of text.matchAll(/\]\(\s*<?([^\s)>]+)>?[^)]*\)/g)) {
        if (/^[a-z][a-z0-9+.-]*:|^\/\//i.test(target)) continue;
        const [path, anchor] = target.split('#');
        const file = path ? normalize(join(dirname(page), path)) : page;
        if (!existsSync(join(root, file)))
          broken.push(`${page}: ${target} (no ${file})`);
        else if (anchor !== undefined && !anchors(file).has(anchor))
          broken.push(`${page}: ${target} (no heading #${anchor} in ${file})`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('every page of docs/ starts with a one-line summary and links back to the README', () => {
    for (const page of pages.filter((p) => p.startsWith('docs/'))) {
      const [title, blank, summary] = read(page).split('\n');
      expect([page, /^# \S/.test(title), blank, summary.length > 20]).toEqual([
        page,
        true,
        '',
        true,
      ]);
      expect([page, read(page).includes('](../README.md')]).toEqual([
        page,
        true,
      ]);
    }
  });

  describe('docs/options.md', () => {
    const { members, levels } = optionsInterface();
    const rows = optionsTable();
    const resolved = resolveOptions({}) as unknown as Record<string, unknown>;

    it('lists every option of ParallelWorkerOptions, once, and no other', () => {
      const listed = rows.map((row) => row.option);
      expect([...listed].sort()).toEqual([...members.keys()].sort());
      expect(new Set(listed).size).toBe(listed.length);
    });

    it('gives the defaults resolveOptions({}) fills in', () => {
      const checked = rows.flatMap(({ option, defaultCell }) => {
        const documented = defaultOf(defaultCell);
        return documented ? [[option, documented.value, resolved[option]]] : [];
      });
      // Most defaults are literals; the rest are expressions (`workers * 5`) or prose.
      expect(checked.length).toBeGreaterThanOrEqual(20);
      for (const [option, documented, actual] of checked)
        expect([option, documented]).toEqual([option, actual]);
    });

    it("agrees with the interface's comments (`Default …`) and the code", () => {
      const checked: string[] = [];
      for (const [option, doc] of members) {
        const span = /Default:? `([^`]+)`/.exec(doc)?.[1];
        const documented = span === undefined ? undefined : literal(span);
        if (!documented) continue;
        checked.push(option);
        expect([option, documented.value]).toEqual([option, resolved[option]]);
      }
      expect(checked.length).toBeGreaterThanOrEqual(20);
    });

    it('names every log level the logging option takes', () => {
      const meaning = rows.find((row) => row.option === 'logging')!.meaning;
      const listed = [
        ...meaning.slice(meaning.indexOf('`level`:')).matchAll(/`(\w+)`/g),
      ]
        .map((m) => m[1])
        .filter((word) => word !== 'level');
      expect(levels.length).toBeGreaterThanOrEqual(6);
      expect([...listed].sort()).toEqual([...levels].sort());
    });
  });
});
