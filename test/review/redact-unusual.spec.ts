import Redis from 'ioredis';
import { redactSecrets } from '../../lib/redact-secrets';

/**
 * URLs ioredis accepts (or that a user writes) whose password redactSecrets
 * prints. Each input is first checked to be read by ioredis with that password,
 * so a failure here is a real secret printed, not a malformed URL.
 */
describe('review: redactSecrets on URLs ioredis reads a password from', () => {
  const passwordOf = (url: string): string | undefined => {
    const r = new Redis(url, { lazyConnect: true });
    const p = r.options.password;
    r.disconnect();
    return p;
  };

  it.each([
    // Protocol-relative: ioredis 5 reads it as redis://… (parseURL's isProtocolRelative).
    ['//:pw-secret@h:6379', 'pw-secret'],
    ['//user:pw-secret@h:6379/0', 'pw-secret'],
    // Uppercase scheme: ioredis' scheme test is case-insensitive.
    ['REDIS://:pw-secret@h:6379', 'pw-secret'],
    // Characters ioredis takes in a password as written (new URL percent-encodes them, ioredis decodes them back).
    ['redis://:pwhalf1 pwhalf2@h:6379', 'pwhalf1 pwhalf2'],
    ['redis://:pwhalf1"pwhalf2@h:6379', 'pwhalf1"pwhalf2'],
    ['redis://:pwhalf1<pwhalf2@h:6379', 'pwhalf1<pwhalf2'],
    ['redis://:pwhalf1`pwhalf2@h:6379', 'pwhalf1`pwhalf2'],
  ])('%s', (url, password) => {
    expect(passwordOf(url)).toBe(password);
    const shown = redactSecrets(`Cannot reach Redis at ${url}`);
    // No part of the password either.
    for (const part of password.split(/[ "<`]/))
      expect(shown).not.toContain(part);
  });
});

describe('review: the CLI with a protocol-relative --redis', () => {
  it('prints no password when Redis is unreachable', async () => {
    const { cli } = await import('../../lib/cli/cli');
    const printed: string[] = [];
    try {
      await cli(['status', 'items', '--redis', '//:pw-secret@127.0.0.1:1'], {
        out: (t: string) => printed.push(t),
        env: {},
        interrupted: new Promise<void>(() => undefined),
      });
    } catch (e) {
      // main.ts prints a CliError's message through redactSecrets: the same mask.
      printed.push(redactSecrets((e as Error).message));
    }
    expect(printed.join('\n')).toMatch(/127\.0\.0\.1:1/);
    expect(printed.join('\n')).not.toContain('pw-secret');
  }, 20_000);
});
