#!/usr/bin/env node
// The CLI entry point: runs the built CLI (npm run build makes dist/).
import('../dist/src/cli/main.js').then((m) => m.main(process.argv.slice(2))).catch((err) => {
  process.stderr.write(`taskstream: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
