/**
 * The dashboard's files, served by the HTTP handler at `/` (placeholder until the dashboard lands).
 * `dashboardAsset(path)` returns the file for a request path relative to the mount point, or
 * undefined when the path is not the dashboard's.
 */
export interface Asset {
  readonly contentType: string;
  readonly body: string | Uint8Array;
}

export function dashboardAsset(path: string): Asset | undefined {
  if (path !== '/') return undefined;
  return { contentType: 'text/html; charset=utf-8', body: '<!doctype html><title>taskstream</title><h1>taskstream</h1>' };
}
