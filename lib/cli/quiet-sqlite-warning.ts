/**
 * Node 22 marks `node:sqlite` experimental and prints an ExperimentalWarning
 * on stderr at its first use: in the CLI's own process that line is noise
 * before every answer (and breaks `2>&1 | jq` of `--json`). Only that warning
 * is dropped; every other warning is printed as Node prints it. Imported
 * first by the CLI's entry; the library never does this in an app's process.
 */
const emitWarning = process.emitWarning.bind(process);

process.emitWarning = (warning: string | Error, ...rest: unknown[]) => {
  const text = typeof warning === 'string' ? warning : warning?.message;
  const type =
    typeof rest[0] === 'string'
      ? rest[0]
      : (rest[0] as { type?: string } | undefined)?.type;
  if (type === 'ExperimentalWarning' && /^SQLite\b/.test(text ?? '')) return;
  return (emitWarning as (...args: unknown[]) => void)(warning, ...rest);
};

export {};
