/**
 * The browser tier's tools: Debian's Chromium driven by playwright-core (no
 * downloaded browsers), contexts that refuse every request leaving
 * 127.0.0.1, screenshots as test artifacts, axe-core and layout-shift checks.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { findClusterTools, PROJECT_ROOT } from '../../tools/cluster/tools.js';

/** Debian's package `chromium`; override with CHROMIUM_PATH. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** No sandbox (root in a VM), no GPU, and nothing that phones home. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** Where screenshots go: git-ignored, kept by CI as artifacts. */
export const SCREENSHOT_DIR = join(PROJECT_ROOT, 'test-results', 'browser');

export const PHONE = { width: 390, height: 844 } as const;
export const DESKTOP = { width: 1280, height: 800 } as const;

/**
 * Whether the browser tier can run: Chromium plus the cluster tier's tools.
 * Prints one loud line when it cannot; with CI=true the caller must fail.
 */
export function browserTierAvailability(): { readonly run: boolean; readonly missing: readonly string[] } {
  const missing: string[] = [];
  if (!existsSync(CHROMIUM_PATH)) missing.push(`chromium (${CHROMIUM_PATH}; apt-get install -y chromium)`);
  const cluster = findClusterTools();
  if (!cluster.ok) missing.push(...cluster.missing, '(npm run setup:cluster)');
  if (missing.length === 0) return { run: true, missing };
  const line = `SKIPPED browser tier (Chromium against a real LiteFS cluster): missing ${missing.join(', ')}`;
  if (process.env.CI === 'true') console.error(`FAILING: ${line}`);
  else console.warn(`\n${'!'.repeat(8)} ${line} ${'!'.repeat(8)}\n`);
  return { run: false, missing };
}

/** Launches Chromium; playwright gives it a fresh temporary profile. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS] });
}

/** What `context.storageState()` gives and `newContext({ storageState })` takes. */
export type StorageState = Awaited<ReturnType<BrowserContext['storageState']>>;

export interface GuardedContext {
  readonly context: BrowserContext;
  /** Every request that tried to leave 127.0.0.1 (and was refused). */
  readonly external: string[];
}

/**
 * A browser context (one cookie jar: a user) in which anything not aimed at
 * 127.0.0.1 is aborted and recorded, so that a page asking for a font or
 * script elsewhere fails the test instead of reaching the network.
 */
export async function guardedContext(
  browser: Browser,
  options: {
    viewport?: { width: number; height: number };
    colorScheme?: 'light' | 'dark';
    javaScriptEnabled?: boolean;
    /** Cookies to start with (a signed-in author's, from `context.storageState()`). */
    storageState?: StorageState;
  } = {},
): Promise<GuardedContext> {
  const context = await browser.newContext({
    viewport: options.viewport ?? DESKTOP,
    colorScheme: options.colorScheme ?? 'light',
    javaScriptEnabled: options.javaScriptEnabled ?? true,
    reducedMotion: 'reduce',
    ...(options.storageState ? { storageState: options.storageState } : {}),
  });
  const external: string[] = [];
  await context.route(
    (url) => url.hostname !== '127.0.0.1' && url.protocol !== 'data:' && url.protocol !== 'blob:',
    async (route) => {
      external.push(route.request().url());
      await route.abort('blockedbyclient');
    },
  );
  context.setDefaultTimeout(15_000);
  context.setDefaultNavigationTimeout(30_000);
  return { context, external };
}

/** Saves a full-page screenshot as `test-results/browser/<name>.png`; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true, animations: 'disabled' });
  return path;
}

export interface AxeViolation {
  readonly id: string;
  readonly impact: string | null;
  readonly help: string;
  readonly targets: readonly string[];
}

let axeSource: string | undefined;

/**
 * Runs axe-core (WCAG 2.x A and AA, and best practices) on the page. The
 * source is evaluated through the DevTools protocol, which the page's CSP
 * (`script-src 'self'`) rightly would not allow as a script tag.
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  axeSource ??= await readFile(createRequire(import.meta.url).resolve('axe-core'), 'utf8');
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: (ctx: Document, opts: object) => Promise<AxeResults> } }).axe;
    interface AxeResults {
      violations: { id: string; impact: string | null; help: string; nodes: { target: unknown[] }[] }[];
    }
    const results = await axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
      resultTypes: ['violations'],
    });
    return results.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n) => n.target.map(String).join(' ')),
    }));
  });
}

/**
 * The page's cumulative layout shift so far (shifts right after input do not
 * count, as in the Web Vitals definition): 0 means nothing moved on its own.
 * Measure it before any probe that touches the page (axe): what it finds
 * must be the page's own doing. `moved` names what shifted, for the message.
 */
export async function cumulativeLayoutShift(page: Page): Promise<{ value: number; moved: string }> {
  const { value, moved } = await page.evaluate(
    () =>
      new Promise<{ value: number; moved: string[] }>((resolve) => {
        let value = 0;
        const moved: string[] = [];
        interface Shift {
          value: number;
          hadRecentInput: boolean;
          startTime: number;
          sources?: { node?: Node | null; previousRect: DOMRectReadOnly; currentRect: DOMRectReadOnly }[];
        }
        const observer = new PerformanceObserver((list) => {
          for (const entry of list.getEntries() as unknown as Shift[]) {
            if (entry.hadRecentInput) continue;
            value += entry.value;
            for (const source of entry.sources ?? []) {
              const node = source.node instanceof Element ? source.node : source.node?.parentElement;
              const name = node
                ? `${node.tagName.toLowerCase()}${node.id ? `#${node.id}` : ''}${node.className ? `.${String(node.className).split(' ').join('.')}` : ''}`
                : '(a node gone)';
              const rect = (r: DOMRectReadOnly) => `${Math.round(r.x)},${Math.round(r.y)} ${Math.round(r.width)}×${Math.round(r.height)}`;
              moved.push(`${name} at ${Math.round(entry.startTime)} ms: ${rect(source.previousRect)} → ${rect(source.currentRect)}`);
            }
          }
        });
        observer.observe({ type: 'layout-shift', buffered: true });
        // Buffered entries arrive in the first callback, on the next task.
        setTimeout(() => {
          observer.disconnect();
          resolve({ value, moved });
        }, 100);
      }),
  );
  return { value, moved: moved.join('; ') };
}

/** The read-your-writes decision in a response's `Server-Timing`, or null. */
export function rywDecision(headers: Record<string, string>): string | null {
  return /(?:^|,\s*)ryw;desc="?([a-z]+)/.exec(headers['server-timing'] ?? '')?.[1] ?? null;
}
