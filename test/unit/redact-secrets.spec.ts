import { redactSecrets } from '../../lib/redact-secrets';

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
  ])('leaves %s as it is', (text) => {
    expect(redactSecrets(text)).toBe(text);
  });
});
