/**
 * The product apart from its tools: `npm run build` compiles src/ alone into
 * the image, and a production install (`npm ci --omit=dev`) has only the
 * runtime dependencies. So no file in src/ may import the cluster harness,
 * edge router and checker (tools/), the benchmarks (bench/), the tests or
 * scripts, nor a package that is only a devDependency. Tools import the
 * product (its codecs), never the other way round.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = process.cwd();
const SRC = join(ROOT, 'src');

/**
 * Every module specifier in a TypeScript file (static, re-exported,
 * side-effect and dynamic imports), as TypeScript's own scanner reads them:
 * not fooled by comments or strings that merely look like imports.
 */
function importSpecifiers(code: string): string[] {
  return ts.preProcessFile(code, true, true).importedFiles.map((f) => f.fileName);
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return tsFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** `express` of `express/lib/x`, `@scope/pkg` of `@scope/pkg/x`. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

const imports = tsFiles(SRC).flatMap((file) =>
  importSpecifiers(readFileSync(file, 'utf8')).map((specifier) => ({ file: relative(ROOT, file), specifier })),
);

describe('importSpecifiers', () => {
  it('finds every kind of import, across lines', () => {
    const code = [
      "import { a } from './a.js';",
      'import type {',
      '  B,',
      "} from '../tools/cluster/cluster.js';",
      "import './side-effect.js';",
      'export { c } from "./c.js";',
      "const d = await import('../bench/d.js');",
      '/** from "a comment" */',
      'const s = \'import x from "./a-string.js"\';',
    ].join('\n');
    expect(importSpecifiers(code).sort()).toEqual(['../bench/d.js', '../tools/cluster/cluster.js', './a.js', './c.js', './side-effect.js']);
  });
});

describe('src/ (the product)', () => {
  it('imports something (the scan reads the real files)', () => {
    expect(imports.filter((i) => i.file === join('src', 'blog.ts')).length).toBeGreaterThan(5);
  });

  it('imports nothing outside src/: not tools/, bench/, test/ or scripts/', () => {
    const outside = imports
      .filter((i) => i.specifier.startsWith('.'))
      .map((i) => ({ ...i, target: relative(ROOT, resolve(ROOT, dirname(i.file), i.specifier)) }))
      .filter((i) => !i.target.startsWith('src/'));
    expect(outside).toEqual([]);
  });

  it('imports only Node built-ins and runtime dependencies (what `npm ci --omit=dev` installs)', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    const runtime = new Set(Object.keys(pkg.dependencies ?? {}));
    const builtins = new Set(builtinModules);
    const missing = imports
      .filter((i) => !i.specifier.startsWith('.') && !i.specifier.startsWith('node:') && !builtins.has(i.specifier))
      .filter((i) => !runtime.has(packageOf(i.specifier)));
    expect(missing).toEqual([]);
  });
});

describe('src/ryw/ (the read-your-writes module)', () => {
  const ryw = imports.filter((i) => i.file.startsWith(join('src', 'ryw') + '/'));

  it('is scanned (its files import each other)', () => {
    expect(ryw.filter((i) => i.specifier.startsWith('.')).length).toBeGreaterThan(5);
  });

  it('stands alone: imports nothing of the blog (only its own files, Node and its few packages)', () => {
    const outside = ryw
      .filter((i) => i.specifier.startsWith('.'))
      .map((i) => ({ ...i, target: relative(ROOT, resolve(ROOT, dirname(i.file), i.specifier)) }))
      .filter((i) => !i.target.startsWith(join('src', 'ryw') + '/'));
    expect(outside).toEqual([]);
    const packages = new Set(
      ryw.filter((i) => !i.specifier.startsWith('.') && !i.specifier.startsWith('node:')).map((i) => packageOf(i.specifier)),
    );
    expect([...packages].sort()).toEqual(['cookie-signature', 'express', 'on-headers']);
  });

  it('is used by the blog through its one entry, src/ryw/index.ts', () => {
    const deep = imports
      .filter((i) => !i.file.startsWith(join('src', 'ryw') + '/') && i.specifier.startsWith('.'))
      .map((i) => ({ ...i, target: relative(ROOT, resolve(ROOT, dirname(i.file), i.specifier)) }))
      .filter((i) => i.target.startsWith(join('src', 'ryw') + '/') && i.target !== join('src', 'ryw', 'index.js'));
    expect(deep).toEqual([]);
  });
});
