/**
 * The dashboard's files, served by the HTTP handler at `/`. `dashboardAsset(path)` returns the file
 * for a request path relative to the mount point ('/', '/app.js', '/style.css'), or undefined when
 * the path is not the dashboard's.
 *
 * The files live in `static/` next to this module: src/dashboard/static when running from source,
 * dist/src/dashboard/static in the built package (scripts/copy-assets.mjs copies them there).
 * `static/app.js` is generated from app.ts by scripts/build-dashboard.mjs (part of `npm run build`).
 * Only the names below are served, so no request path can reach another file. Files are read on
 * request (the page is fetched rarely and is a few tens of kilobytes), which keeps no state here.
 */
import { readFileSync } from 'node:fs';

export interface Asset {
  readonly contentType: string;
  readonly body: string | Uint8Array;
}

const STATIC_DIR = new URL('./static/', import.meta.url);

const FILES: Readonly<Record<string, { file: string; contentType: string }>> = {
  '/': { file: 'index.html', contentType: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', contentType: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', contentType: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', contentType: 'text/css; charset=utf-8' },
};

export function dashboardAsset(path: string): Asset | undefined {
  const entry = Object.hasOwn(FILES, path) ? FILES[path] : undefined;
  if (!entry) return undefined;
  try {
    return { contentType: entry.contentType, body: readFileSync(new URL(entry.file, STATIC_DIR)) };
  } catch (err) {
    // app.js is missing until the dashboard is built; the page itself says how to build it.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
