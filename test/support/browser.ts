import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';

/** Debian's Chromium, or the one `CHROMIUM_PATH` names. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Starts headless Chromium. Without it the browser suites fail at once with what to install
 * (they are never skipped): `.ci/run` installs Debian's `chromium` when it is missing.
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM_PATH}: the audit viewer's browser tests need it. ` +
        "Install Debian's package (apt-get install -y chromium, as .ci/run does) or set CHROMIUM_PATH.",
    );
  }
  // As root, Chromium refuses to start with its sandbox.
  const args = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args });
}

/** Opens the viewer at `query` (`?view=…`) and waits until the view has loaded its data. */
export async function openViewer(page: Page, query = ''): Promise<void> {
  await page.goto(`/audit/ui${query}`);
  await waitReady(page);
}

/** Waits until the view on screen has loaded its data. */
export async function waitReady(page: Page): Promise<void> {
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
}

/** The list's rows as the texts of their cells (When, User, Action, Entity, Outcome). */
export function listRows(page: Page): Promise<string[][]> {
  return page.$$eval('#trail tbody tr', (rows: DomNode[]) =>
    rows.map((row) => Array.from(row.querySelectorAll('td'), (cell) => cell.textContent ?? '').slice(0, 5)),
  );
}

/** An element as the functions run in the page read it (the project compiles without the DOM library). */
export interface DomNode {
  textContent: string | null;
  children: ArrayLike<DomNode>;
  getAttribute(name: string): string | null;
  querySelectorAll(selector: string): ArrayLike<DomNode>;
}

/** The page's globals as the functions run in it use them: cast `globalThis` to this inside `evaluate`. */
export interface PageGlobals {
  document: DomNode & {
    activeElement: unknown;
    body: DomNode;
    documentElement: { scrollWidth: number };
    getElementById(id: string): DomNode | null;
    addEventListener(type: 'securitypolicyviolation', listener: (event: { violatedDirective: string; blockedURI: string }) => void): void;
  };
  getComputedStyle(node: DomNode): { display: string; fontFamily: string };
  __pwned?: unknown;
  __violations: string[];
}
