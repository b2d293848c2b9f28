/**
 * Browser safety: which `Host` a loopback-bound server answers (DNS rebinding), which origins
 * get CORS headers, and the headers every response carries.
 *
 * DNS rebinding: a page on evil.example resolves its own name to 127.0.0.1 and then talks to a
 * loopback server as same-origin. The browser still sends `Host: evil.example`, so a server bound
 * to loopback answers only loopback names (and the names it was told), which that page cannot forge.
 */

/** Sent on every response. */
export const BASE_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** Sent with the dashboard's page and assets, as headers (a `<meta>` CSP cannot say `frame-ancestors`). */
export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
};

const LOOPBACK_NAMES: ReadonlySet<string> = new Set(['localhost', '[::1]']);

export interface HostPolicy {
  /** Extra names a loopback-bound server answers to (lower case, without port). */
  readonly allowedHosts: ReadonlySet<string>;
}

export function resolveHosts(allowedHosts: readonly string[] | undefined): HostPolicy {
  if (allowedHosts !== undefined && !Array.isArray(allowedHosts)) throw new TypeError('http option allowedHosts must be an array of host names');
  const names = new Set<string>();
  for (const host of allowedHosts ?? []) {
    if (typeof host !== 'string' || !/^[A-Za-z0-9.-]+$|^\[[0-9A-Fa-f:.]+\]$/.test(host)) {
      throw new TypeError(`http option allowedHosts: ${JSON.stringify(host)} is not a host name (no scheme, no port)`);
    }
    names.add(host.toLowerCase());
  }
  return { allowedHosts: names };
}

/** True for 127.0.0.0/8, ::1 and their IPv4-mapped forms: the addresses only this machine reaches. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/**
 * Whether a request reaching a server bound to `localAddress` may be answered. Only loopback-bound
 * servers check (a server on a public address is reached by real names); Unix sockets and the
 * Fetch adapter, which has no address, are checked only when `allowedHosts` was given.
 */
export function hostAllowed(policy: HostPolicy, host: string | undefined, localAddress: string | undefined): boolean {
  const check = isLoopbackAddress(localAddress) || (localAddress === undefined && policy.allowedHosts.size > 0);
  if (!check) return true;
  if (host === undefined) return false;
  const name = hostName(host);
  return LOOPBACK_NAMES.has(name) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name) || policy.allowedHosts.has(name);
}

function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.indexOf(':');
  return colon === -1 ? h : h.slice(0, colon);
}

export interface CorsPolicy {
  readonly origins: ReadonlySet<string>;
}

export function resolveCors(origins: readonly string[] | undefined): CorsPolicy {
  if (origins !== undefined && !Array.isArray(origins)) throw new TypeError('http option corsOrigins must be an array of origins');
  const set = new Set<string>();
  for (const origin of origins ?? []) {
    let url: URL | undefined;
    try {
      url = new URL(origin);
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== origin.replace(/\/$/, '')) {
      throw new TypeError(`http option corsOrigins: ${JSON.stringify(origin)} is not an origin (scheme://host[:port], e.g. https://app.example.com)`);
    }
    set.add(url.origin);
  }
  return { origins: set };
}

/** CORS headers for a request from `origin`, or none when the origin is not allowed. */
export function corsHeaders(policy: CorsPolicy, origin: string | undefined): Record<string, string> {
  if (origin === undefined || !policy.origins.has(origin)) return {};
  return {
    'access-control-allow-origin': origin,
    'access-control-expose-headers': 'location, retry-after, www-authenticate, x-request-id',
    vary: 'Origin',
  };
}

/** Headers answering a preflight from an allowed origin. */
export function preflightHeaders(policy: CorsPolicy, origin: string): Record<string, string> {
  return {
    ...corsHeaders(policy, origin),
    'access-control-allow-methods': 'GET, HEAD, POST',
    'access-control-allow-headers': 'authorization, content-type, last-event-id, idempotency-key, x-request-id',
    'access-control-max-age': '600',
  };
}
