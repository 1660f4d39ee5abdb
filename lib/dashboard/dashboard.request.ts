/** What the page needs of a request (Express and Fastify alike). */
export interface DashboardRequest {
  originalUrl?: string;
  url?: string;
  /**
   * The host the client asked for, as the framework reads it: the Host
   * header, or X-Forwarded-Host only when the app trusts its proxy
   * (Express `trust proxy`, Fastify `trustProxy`).
   */
  host?: string;
  headers?: Record<string, string | string[] | undefined>;
  /** Set by the app's auth guard (Passport and most others do). */
  user?: unknown;
}

/**
 * The request comes from a page of this app: the browser says so
 * (`Sec-Fetch-Site`, which no script can set), or, from an older browser, its
 * `Origin` has the host the request was sent to. A client can send any
 * X-Forwarded-Host, so it counts only where the app trusts its proxy: the
 * framework's `request.host` reads it then, and the Host header otherwise.
 */
export function sameOrigin(
  request: DashboardRequest,
  headers: Record<string, string | undefined>,
): boolean {
  const site = headers['sec-fetch-site'];
  if (site) return site === 'same-origin';
  const origin = headers.origin;
  if (!origin) return true;
  const host =
    typeof request.host === 'string' ? request.host : (headers.host ?? '');
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

/**
 * Who started a run from the page, for its history: `dashboard`, and the
 * user the app's guard put on the request (`request.user.name`, else its
 * `id`), as `dashboard (alice)`.
 */
export function startedBy(request: DashboardRequest): string {
  const user = request.user as { name?: unknown; id?: unknown } | undefined;
  const who = [user?.name, user?.id].find(
    (v): v is string | number =>
      (typeof v === 'string' && v.trim() !== '') || typeof v === 'number',
  );
  return who === undefined
    ? 'dashboard'
    : `dashboard (${String(who).trim().slice(0, 100)})`;
}
