#!/usr/bin/env node
import './quiet-sqlite-warning';
import { redactSecrets } from '../redact-secrets';
import { cli, CliError } from './cli';

const interrupted = new Promise<void>((resolve) =>
  process.once('SIGINT', () => resolve()),
);

cli(process.argv.slice(2), {
  out: (text) => void process.stdout.write(`${text}\n`),
  interrupted,
  tty: process.stdout.isTTY === true,
  env: process.env,
})
  .then((code) => process.exit(code))
  .catch((e) => {
    process.stderr.write(
      `${redactSecrets(e instanceof CliError ? e.message : String((e as Error)?.stack ?? e))}\n`,
    );
    process.exit(e instanceof CliError ? 2 : 1);
  });
