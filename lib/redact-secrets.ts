/**
 * Secrets masked in any text the module shows (logs, errors, the CLI, the
 * dashboard): a URL's userinfo (`user:password@`) and query string (ioredis
 * reads `?password=` too) become `***`, in URLs with a scheme and in the
 * scheme-less `user:password@host:port` that ioredis and the CLI accept.
 * Masking too much is harmless; printing a password is not.
 */
export function redactSecrets(text: string): string {
  return text.replace(TOKEN, (token) =>
    token.includes('@') || token.includes('=') ? maskToken(token) : token,
  );
}

/** A run of characters a URL can hold unescaped (RFC 3986 leaves out whitespace, `"`, `<`, `>` and the backtick). */
const TOKEN = /[^\s"<>`]+/g;
const SCHEME = /[A-Za-z][A-Za-z0-9+.-]*:\/\//g;
/** `[userinfo@]host:port[/db]`: an address without a scheme, as ioredis reads `host:port?password=…`. */
const HOST_PORT = /^(?:[^@/?#]*@)?[^/?#@]*:\d+(?:\/\d*)?$/;
/** A query masked already, then quoted in a sentence: `(… at redis://h:1?***).` stays as it is. */
const MASKED = /^\?\*\*\*[).,:;]*$/;
/** A query parameter whose name says it holds a secret, in any token. */
const SECRET_PARAM =
  /(^|[?&;])([\w.-]*(?:pass|pwd|secret|token|auth)[\w.-]*)=[^&;#]*/gi;

function maskToken(token: string): string {
  const starts = [...token.matchAll(SCHEME)].map((m) => m.index);
  if (!starts.length) return maskSchemeless(token);
  // Each URL of a list (`redis://a@h1,redis://b@h2`) on its own.
  const pieces = [token.slice(0, starts[0])];
  starts.forEach((start, i) =>
    pieces.push(maskUrl(token.slice(start, starts[i + 1]))),
  );
  return pieces.join('');
}

/** `scheme://[userinfo@]host[path][?query]`, split as WHATWG URL (and so ioredis) splits it. */
function maskUrl(url: string): string {
  const start = url.indexOf('://') + 3;
  const rest = url.slice(start);
  const end = rest.search(/[/?#]/);
  const authority = end === -1 ? rest : rest.slice(0, end);
  const at = authority.lastIndexOf('@');
  let tail = end === -1 ? '' : rest.slice(end);
  const query = tail.indexOf('?');
  if (query !== -1 && !MASKED.test(tail.slice(query)))
    tail = `${tail.slice(0, query)}?***`;
  return `${url.slice(0, start)}${at === -1 ? authority : `***@${authority.slice(at + 1)}`}${tail}`;
}

function maskSchemeless(token: string): string {
  let masked = token;
  const at = masked.lastIndexOf('@');
  const after = masked.slice(at + 1);
  if (
    at !== -1 &&
    !masked.slice(0, at).includes('/') &&
    (masked.slice(0, at).includes(':') || /^[^/?#]*:\d+/.test(after))
  )
    masked = `***@${after}`;
  const query = masked.indexOf('?');
  if (MASKED.test(masked.slice(query))) return masked;
  if (query !== -1 && HOST_PORT.test(masked.slice(0, query)))
    return `${masked.slice(0, query)}?***`;
  return masked.replace(SECRET_PARAM, '$1$2=***');
}
