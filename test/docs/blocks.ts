/**
 * The fenced code blocks of the Markdown docs, with the directives written just above them.
 *
 * Convention (see docs/README.md, "Code blocks"):
 * - ```js, ```ts and ```sh blocks are run; ```text, ```json, ```http, ```ini and unlabelled blocks
 *   are shown, never run.
 * - `<!-- not run: REASON -->` just above a block skips it; the test reports the reason.
 * - `<!-- run: with taskstream serve -->`: a fresh `taskstream serve` is started for the block, and
 *   the block's `127.0.0.1:8888` (the default address) is pointed at it.
 * - `<!-- run: as a server -->`: the block is a server; it gets PORT, must answer GET /health there,
 *   then gets SIGTERM and must exit 0.
 * - `<!-- expect: TEXT -->`: the block's output must contain TEXT.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

export type Lang = 'js' | 'ts' | 'sh';

export interface Block {
  readonly file: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  /** The fence's info string, first word, lower case ('' when unlabelled). */
  readonly info: string;
  /** The language it runs as, or undefined when it is shown only. */
  readonly lang: Lang | undefined;
  readonly code: string;
  readonly notRun: string | undefined;
  readonly withServer: boolean;
  readonly asServer: boolean;
  readonly expect: readonly string[];
}

const RUN_AS: Record<string, Lang> = { js: 'js', javascript: 'js', mjs: 'js', ts: 'ts', typescript: 'ts', sh: 'sh', bash: 'sh', shell: 'sh' };
const SHOWN = new Set(['', 'text', 'json', 'http', 'ini', 'systemd', 'diff', 'console', 'promql']);
const DIRECTIVE = /^<!--\s*(not run|run|expect):\s*(.*?)\s*-->$/;

/** The Markdown files whose blocks must run: README.md, examples/README.md, docs/ (not the generated docs/api/). */
export function docFiles(root: string): string[] {
  const walk = (dir: string): string[] => readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'api' && dir === join(root, 'docs') ? [] : walk(path);
    return name.endsWith('.md') ? [path] : [];
  });
  return [join(root, 'README.md'), join(root, 'examples/README.md'), ...walk(join(root, 'docs'))].map((p) => relative(root, p));
}

export function blocksOf(root: string, file: string): Block[] {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^( {0,3})(`{3,}|~{3,})\s*([^\s`]*)/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[2]!;
    const info = open[3]!.toLowerCase();
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.trimStart().startsWith(fence); i++) body.push(lines[i]!);
    if (i >= lines.length) throw new Error(`${file}:${start + 1}: code block never closed`);
    const directives: Array<[string, string]> = [];
    for (let j = start - 1; j >= 0; j--) {
      const m = DIRECTIVE.exec(lines[j]!.trim());
      if (!m) break;
      directives.unshift([m[1]!, m[2]!]);
    }
    const lang = RUN_AS[info];
    if (lang === undefined && !SHOWN.has(info)) throw new Error(`${file}:${start + 1}: code block language "${info}" is neither run nor shown (see test/docs/blocks.ts)`);
    const run = directives.filter(([k]) => k === 'run').map(([, v]) => v);
    for (const r of run) if (r !== 'with taskstream serve' && r !== 'as a server') throw new Error(`${file}:${start + 1}: unknown directive "run: ${r}"`);
    const notRun = directives.find(([k]) => k === 'not run')?.[1];
    if (notRun !== undefined && notRun.length === 0) throw new Error(`${file}:${start + 1}: "not run" needs a reason`);
    blocks.push({
      file, line: start + 1, info, lang, code: `${body.join('\n')}\n`, notRun,
      withServer: run.includes('with taskstream serve'),
      asServer: run.includes('as a server'),
      expect: directives.filter(([k]) => k === 'expect').map(([, v]) => v),
    });
  }
  return blocks;
}
