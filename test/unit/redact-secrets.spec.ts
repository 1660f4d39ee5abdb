import Redis from 'ioredis';
import { redactSecrets } from '../../lib/redact-secrets';
import { toWireError } from '../../lib/cluster/wire-error';

describe('redactSecrets', () => {
  it.each([
    ['redis://:pw-secret@h:6379', 'redis://***@h:6379'],
    ['redis://user:pw-secret@h:6379/0', 'redis://***@h:6379/0'],
    ['redis://h:6395/0?password=pw-secret', 'redis://h:6395/0?***'],
    ['rediss://user:pw-secret@h:6380?tls=1', 'rediss://***@h:6380?***'],
    ['user:pw-secret@h:6379', '***@h:6379'],
    [':pw-secret@h:6379', '***@h:6379'],
    ['h:6379/2?password=pw-secret', 'h:6379/2?***'],
    [
      'redis://:a-pw-secret@h1:1,redis://:b-pw-secret@h2:2',
      'redis://***@h1:1,redis://***@h2:2',
    ],
    ['u:pw-secret@h1:1,h2:2', '***@h1:1,h2:2'],
    // A password holding characters that end nothing in a URL, in running text.
    [
      'Cannot reach Redis at redis://:p,w@pw-secret@h:1: ECONNREFUSED',
      'Cannot reach Redis at redis://***@h:1: ECONNREFUSED',
    ],
    ['{"url":"redis://u:pw-secret@h:1?x=1"}', '{"url":"redis://***@h:1?***"}'],
    [
      '/tmp/redis.sock?password=pw-secret&db=1',
      '/tmp/redis.sock?password=***&db=1',
    ],
    // A query in running text is masked to the end of its word, punctuation included.
    [
      `(Redis at ${'redis://h:1?password=pw-secret'}): refused`,
      '(Redis at redis://h:1?*** refused',
    ],
  ])('%s', (input, shown) => {
    expect(redactSecrets(input)).toBe(shown);
    expect(redactSecrets(input)).not.toContain('pw-secret');
  });

  it.each([
    'bob@example.com',
    'at handle (/app/node_modules/@nestjs/core/router.js:1:2)',
    'at file:///app/node_modules/@nestjs/core/router.js:1:2',
    'redis://[::1]:6379',
    'Redis master "m" through sentinels h:26379,h2:26379',
    'job items: failed (run 0d1f): poison range at 1201',
    '(Redis at rediss://***@h:1?***) did not answer.',
    'Cannot reach Redis at ***@h:1?***: ECONNREFUSED',
    'a comment // that says a/b // c',
    'https://github.com/@org/x and bob@example.com',
    '[12:00:01] at ***@h:6379',
  ])('leaves %s as it is', (text) => {
    expect(redactSecrets(text)).toBe(text);
  });

  it.each([
    ['Cannot reach redis://user:p@ss@h.', 'Cannot reach redis://***@h.'],
    ['(at rediss://:p%40ss@h:6380).', '(at rediss://***@h:6380).'],
    [
      'Cannot reach Redis at user:pw half@h:6379: ECONNREFUSED',
      'Cannot reach Redis at ***@h:6379: ECONNREFUSED',
    ],
    ['x //:pw@h:1/0?db=1 y', 'x //***@h:1/0?*** y'],
    // A URL never spans lines: the next line's address is one of its own.
    ['redis://:a\nb@h:1', 'redis://:a\n***@h:1'],
    // The userinfo runs to the last `@` of the authority, as ioredis reads it: more is masked, never less.
    ['redis://h:6379 then mail ops@example.com', 'redis://***@example.com'],
  ])('masks %j', (input, shown) => {
    expect(redactSecrets(input)).toBe(shown);
  });
});

describe('redactSecrets on URLs ioredis reads a password from', () => {
  const passwordOf = (url: string): string | undefined => {
    const r = new Redis(url, { lazyConnect: true });
    const p = r.options.password;
    r.disconnect();
    return p;
  };

  // Each input is first checked to be read by ioredis with that password: a failure is a secret printed.
  it.each([
    // Protocol-relative: ioredis reads it as redis://….
    ['//:pw-secret@h:6379', 'pw-secret'],
    ['//user:pw-secret@h:6379/0', 'pw-secret'],
    ['REDIS://:pw-secret@h:6379', 'pw-secret'],
    // Characters ioredis takes in a password as written (new URL percent-encodes them, ioredis decodes them back).
    ['redis://:pwhalf1 pwhalf2@h:6379', 'pwhalf1 pwhalf2'],
    ['redis://:pwhalf1"pwhalf2@h:6379', 'pwhalf1"pwhalf2'],
    ['redis://:pwhalf1<pwhalf2@h:6379', 'pwhalf1<pwhalf2'],
    ['redis://:pwhalf1`pwhalf2@h:6379', 'pwhalf1`pwhalf2'],
    ['redis://:pwhalf1 pwhalf2@h:6379/0?db=1', 'pwhalf1 pwhalf2'],
    ['redis://user:pwhalf1@pwhalf2@h:6379', 'pwhalf1@pwhalf2'],
    ['rediss://:pwhalf1%40pwhalf2@h:6380', 'pwhalf1@pwhalf2'],
    ['user:pwhalf1 pwhalf2@h:6379', 'pwhalf1 pwhalf2'],
    [':pwhalf1"pwhalf2@h:6379', 'pwhalf1"pwhalf2'],
  ])('%s', (url, password) => {
    expect(passwordOf(url)).toBe(password);
    for (const text of [
      url,
      `Cannot reach Redis at ${url}`,
      `Cannot reach Redis at ${url}.`,
      `(Redis at ${url}): refused`,
    ]) {
      const shown = redactSecrets(text);
      // No part of the password either.
      for (const part of password.split(/[ "<`@]|%40/))
        expect(shown).not.toContain(part);
      expect(shown).toContain('h:63');
    }
  });
});

describe('the CLI with a protocol-relative --redis', () => {
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
    expect(printed.join('\n')).toMatch(
      /Cannot reach Redis at \/\/\*\*\*@127\.0\.0\.1:1/,
    );
    expect(printed.join('\n')).not.toContain('pw-secret');
  }, 20_000);
});

describe('redactSecrets on huge text', () => {
  // A handler may throw a message of megabytes: masking reads it in one pass (before: a scheme tried at every letter,
  // quadratic, and a worker or the primary spun for minutes on a 2 MB message).
  it('masks after 2 MB of letters, and in 100,000 scheme-less addresses on one line', () => {
    const letters = 'a'.repeat(2_000_000);
    expect(redactSecrets(`${letters} redis://:pw@h:1 done`)).toBe(
      `${letters} redis://***@h:1 done`,
    );
    const many = Array.from({ length: 100_000 }, () => 'x@h:1').join(' ');
    const masked = redactSecrets(many);
    expect(masked).not.toMatch(/x@/);
    expect(masked.split(' ')).toHaveLength(100_000);
  });

  it('masks what a thrown 2 MB message starts with, and cuts it', () => {
    const error = toWireError(
      new Error(`redis://:pw@h:1 ${'b'.repeat(2_000_000)}`),
    );
    expect(error.message.startsWith('redis://***@h:1 bbb')).toBe(true);
    expect(error.message.length).toBeLessThanOrEqual(8_000);
  });
});
