// Bundles the dashboard's browser code (src/dashboard/app.ts and what it imports) into one file,
// src/dashboard/static/app.js, served by dashboardAsset('/app.js'). Run before `tsc` and
// scripts/copy-assets.mjs in `npm run build` (the copy puts it in dist/), and by the browser tests.
// The output is generated, so it is git-ignored.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

await build({
  absWorkingDir: root,
  entryPoints: ['src/dashboard/app.ts'],
  outfile: 'src/dashboard/static/app.js',
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['chrome109', 'firefox115', 'safari16'],
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
