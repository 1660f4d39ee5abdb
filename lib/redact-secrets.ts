/**
 * Secrets masked in any text the module shows (logs, errors, the CLI, the
 * dashboard): a URL's userinfo (`user:password@`) and query string (ioredis
 * reads `?password=` too) become `***`, in URLs with a scheme, protocol-relative
 * ones (`//:password@host`) and the scheme-less `user:password@host:port` that
 * ioredis and the CLI accept. ioredis reads a password up to the last `@` before
 * the host, spaces, quotes and `<` included, so the mask does too. Masking too
 * much is harmless; printing a password is not.
 */
export function redactSecrets(text: string): string {
  // A URL never spans lines (WHATWG URL drops a newline inside one, so no password can hold one either).
  return text.split('\n').map(maskLine).join('\n');
}

/** A character of a URL scheme after its first letter. */
const SCHEME_CHAR = /[A-Za-z0-9+.-]/;
/** The first character of a URL scheme. */
const SCHEME_FIRST = /[A-Za-z]/;
/** What ends a URL in running text (RFC 3986 leaves out whitespace, `"`, `<`, `>` and the backtick). */
const URL_END = /[\s"<>`]/;
/** What ends a URL's authority (WHATWG URL, as ioredis parses it). */
const AUTHORITY_END = /[/?#]/;
/** A run of characters a URL can hold unescaped. */
const TOKEN = /[^\s"<>`]+/g;
/** `[userinfo@]host:port[/db]`: an address without a scheme, as ioredis reads `host:port?password=…`. */
const HOST_PORT = /^(?:[^@/?#]*@)?[^/?#@]*:\d+(?:\/\d*)?$/;
/** A token a userinfo can start: `user:pass` or `:pass` (userinfo characters before the `:`), not a `label:` or a time. */
const USERINFO_START = /^[\w.~%!$&'()*+,;=-]*:(?!$)[^/@]*$/;
/** A query masked already, then quoted in a sentence: `(… at redis://h:1?***).` stays as it is. */
const MASKED = /^\?\*\*\*[).,:;]*$/;
/** A query parameter whose name says it holds a secret, in any token. */
const SECRET_PARAM =
  /(^|[?&;])([\w.-]*(?:pass|pwd|secret|token|auth)[\w.-]*)=[^&;#]*/gi;

/**
 * Where URLs start on the line: each `//`, or the `scheme:` before it (ioredis
 * reads `//host` as `redis://host`). Found from the `//`s and walked back over
 * the scheme, so the cost stays linear in the line (a regular expression
 * trying a scheme at every position is quadratic on a long run of letters,
 * such as a huge error message).
 */
function urlStarts(line: string): number[] {
  const starts: number[] = [];
  let floor = 0;
  for (let at = line.indexOf('//'); at !== -1; at = line.indexOf('//', at)) {
    let start = at;
    if (at > floor && line[at - 1] === ':') {
      let first = at - 1;
      while (first > floor && SCHEME_CHAR.test(line[first - 1])) first--;
      while (first < at - 1 && !SCHEME_FIRST.test(line[first])) first++;
      if (first < at - 1) start = first;
    }
    starts.push(start);
    at += 2;
    floor = at;
  }
  return starts;
}

function maskLine(line: string): string {
  const starts = urlStarts(line);
  if (!starts.length) return maskSchemeless(line);
  const pieces = [maskSchemeless(line.slice(0, starts[0]))];
  // Each URL of a list (`redis://a@h1,redis://b@h2`) on its own; the text after a URL's end may hold a scheme-less one.
  starts.forEach((start, i) => {
    const segment = line.slice(start, starts[i + 1]);
    const { masked, end } = maskUrl(segment);
    pieces.push(masked, maskSchemeless(segment.slice(end)));
  });
  return pieces.join('');
}

/**
 * `[scheme:]//[userinfo@]host[path][?query]` at the start of `segment`, read
 * as WHATWG URL (and so ioredis) reads it: the userinfo runs to the last `@`
 * before the authority ends, whatever it holds. Returns the URL masked and
 * where it ended in `segment`.
 */
function maskUrl(segment: string): { masked: string; end: number } {
  const start = segment.indexOf('//') + 2;
  const authorityEnd = searchFrom(segment, AUTHORITY_END, start);
  const at = segment.lastIndexOf('@', authorityEnd - 1);
  const hostStart = at >= start ? at + 1 : start;
  const prefix =
    at >= start ? `${segment.slice(0, start)}***@` : segment.slice(0, start);
  const hostEnd = searchFrom(segment, /[\s"<>`/?#]/, hostStart);
  const end = AUTHORITY_END.test(segment.charAt(hostEnd))
    ? searchFrom(segment, URL_END, hostEnd)
    : hostEnd;
  let tail = segment.slice(hostStart, end);
  const query = tail.indexOf('?');
  if (query !== -1 && !MASKED.test(tail.slice(query)))
    tail = `${tail.slice(0, query)}?***`;
  return { masked: `${prefix}${tail}`, end };
}

/** The index of the first match of `pattern` in `text` from `from` on, or the length of `text`. */
function searchFrom(text: string, pattern: RegExp, from: number): number {
  const found = text.slice(from).search(pattern);
  return found === -1 ? text.length : from + found;
}

/**
 * `user:password@host:port[?query]` and `?password=` in text without a
 * scheme. A password with spaces or quotes is split into several tokens: the
 * mask then reaches back to the token its userinfo started in (the nearest one
 * on the line with a `:`, when it reads as `user:pass` or `:pass`).
 */
function maskSchemeless(text: string): string {
  const tokens = [...text.matchAll(TOKEN)].map((m) => ({
    start: m.index,
    text: m[0],
  }));
  let out = '';
  let done = 0;
  tokens.forEach((token, i) => {
    if (!token.text.includes('@') && !token.text.includes('=')) return;
    const { masked, userinfo } = maskToken(token.text);
    if (masked === token.text) return;
    let from = token.start;
    if (userinfo !== undefined && !userinfo.includes(':')) {
      // Back over the tokens not masked yet only (a bounded walk: the text before `done` is settled).
      let begun: { start: number; text: string } | undefined;
      for (let k = i - 1; k >= 0 && tokens[k].start >= done; k--)
        if (tokens[k].text.includes(':')) {
          begun = tokens[k];
          break;
        }
      if (begun && USERINFO_START.test(begun.text)) from = begun.start;
    }
    out += text.slice(done, from) + masked;
    done = token.start + token.text.length;
  });
  return out + text.slice(done);
}

/** One token: its userinfo masked (and what it was), its query or secret parameters masked. */
function maskToken(token: string): { masked: string; userinfo?: string } {
  let masked = token;
  let userinfo: string | undefined;
  const at = masked.lastIndexOf('@');
  const before = masked.slice(0, at);
  const after = masked.slice(at + 1);
  if (
    at !== -1 &&
    before !== '***' &&
    !before.includes('/') &&
    (before.includes(':') || /^[^/?#]*:\d+/.test(after))
  ) {
    userinfo = before;
    masked = `***@${after}`;
  }
  const query = masked.indexOf('?');
  if (query !== -1 && MASKED.test(masked.slice(query)))
    return { masked, userinfo };
  if (query !== -1 && HOST_PORT.test(masked.slice(0, query)))
    return { masked: `${masked.slice(0, query)}?***`, userinfo };
  return { masked: masked.replace(SECRET_PARAM, '$1$2=***'), userinfo };
}
