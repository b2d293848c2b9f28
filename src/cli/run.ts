/** Runs the CLI from source (`node --import tsx src/cli/run.ts …`); the published entry is bin/taskstream.js. */
import { main } from './main.js';

await main(process.argv.slice(2));
