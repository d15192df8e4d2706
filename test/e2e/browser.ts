/**
 * What the dashboard's browser tests share: Debian's chromium driven by
 * playwright-core (no browser download), where screenshots go, and polling until
 * the page shows something.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';

export const CHROMIUM = process.env.TROSYN_CHROMIUM ?? '/usr/bin/chromium';
/** Screenshots kept as test artifacts (out of git). */
export const SCREENSHOTS = join('tmp', 'dashboard-screenshots');
export const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser)
  console.error(
    `\n*** SKIPPING the dashboard browser tests: no chromium at ${CHROMIUM} (apt-get install chromium) ***\n`,
  );

/** Starts chromium headless, with nothing of its own going to the network. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Polls `check` every 100 ms until it holds, or fails naming `what`. */
export async function until(
  check: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (
      await Promise.resolve()
        .then(check)
        .catch(() => false)
    )
      return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A text the page shows with too little contrast against what is behind it (WCAG 2 AA). */
export interface ContrastFailure {
  text: string;
  /** The element, as `tag.class`. */
  element: string;
  color: string;
  background: string;
  ratio: number;
  /** 4.5, or 3 for large text (24 px, or 18.66 px bold). */
  required: number;
}

/**
 * Colour arithmetic run in the page (as source text, so nothing the test's
 * compiler adds to a function reaches the browser). `background(el)` is what is
 * behind an element: the first opaque background up its ancestors with the
 * translucent ones above it blended in (the canvas, white, under all).
 */
const COLOUR_HELPERS = `
  const parse = (c) => {
    const m = /^rgba?\\(([^)]*)\\)$/.exec(c.trim());
    if (!m) return undefined;
    const p = m[1].split(/[\\s,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, under) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)).concat(1);
  };
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      const s = v / 255;
      return s <= 0.04045 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratioOf = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return Math.round(((hi + 0.05) / (lo + 0.05)) * 100) / 100;
  };
  const background = (el) => {
    const layers = [];
    for (let n = el; n; n = n.parentElement) {
      const bg = parse(getComputedStyle(n).backgroundColor);
      if (bg === undefined) return undefined;
      if (bg[3] > 0) layers.push(bg);
      if (bg[3] >= 1) break;
    }
    return layers.reverse().reduce((under, top) => over(top, under), [255, 255, 255, 1]);
  };
  const rgb = (c) => 'rgb(' + c.slice(0, 3).map(Math.round).join(', ') + ')';
  const nameOf = (el) =>
    el.tagName.toLowerCase() +
    (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
`;

/**
 * Every visible element with text of its own, and every text field's value or
 * placeholder, against its background. Opacity on the way fades the text.
 * Disabled controls are left out (WCAG exempts them); so is SVG, whose text is
 * painted with `fill`.
 */
const CONTRAST_CHECK = `(() => {
  ${COLOUR_HELPERS}
  const opacity = (el) => {
    let o = 1;
    for (let n = el; n; n = n.parentElement) o *= Number(getComputedStyle(n).opacity);
    return o;
  };
  const texts = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('svg') || el.closest(':disabled') || ['SCRIPT', 'STYLE', 'OPTION', 'DATALIST'].includes(el.tagName)) continue;
    const style = getComputedStyle(el);
    const rect = el.getBoundingClientRect();
    if (style.visibility !== 'visible' || rect.width <= 1 || rect.height <= 1) continue;
    if (!el.checkVisibility({ opacityProperty: true, visibilityProperty: true })) continue;
    const own = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join('').trim();
    if (own) texts.push([el, own, style.color, style]);
    const field = el.matches('textarea, select, input:not([type=checkbox]):not([type=radio]):not([type=hidden])');
    if (field && el.value) texts.push([el, String(el.value), style.color, style]);
    else if (field && el.placeholder) texts.push([el, el.placeholder, getComputedStyle(el, '::placeholder').color, style]);
  }
  const failures = [];
  for (const [el, text, color, style] of texts) {
    const bg = background(el);
    const fg = parse(color);
    if (bg === undefined || fg === undefined) {
      failures.push({ text: text.slice(0, 60), element: nameOf(el), color, background: 'unreadable', ratio: 0, required: 4.5 });
      continue;
    }
    const seen = over([fg[0], fg[1], fg[2], fg[3] * opacity(el)], bg);
    const ratio = ratioOf(seen, bg);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const required = large ? 3 : 4.5;
    if (ratio < required)
      failures.push({ text: text.slice(0, 60), element: nameOf(el), color: rgb(seen), background: rgb(bg), ratio, required });
  }
  return { checked: texts.length, failures };
})()`;

/**
 * The focused element's focus outline against what is around it (the outline is
 * drawn outside the element: its parent's background). No outline: ratio 0.
 */
const FOCUS_CHECK = `(() => {
  ${COLOUR_HELPERS}
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const outline = parse(style.outlineColor);
  const bg = background(el.parentElement ?? el);
  const drawn = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
  return {
    element: nameOf(el),
    text: (el.textContent || el.getAttribute('aria-label') || '').trim().slice(0, 60),
    color: outline ? rgb(outline) : style.outlineColor,
    background: bg ? rgb(bg) : 'unreadable',
    ratio: drawn && outline && bg ? ratioOf(over(outline, bg), bg) : 0,
  };
})()`;

/**
 * Checks the contrast of every text the page shows now (WCAG 2 AA: 4.5:1, 3:1 for
 * large text); `checked` counts the texts looked at.
 */
export function checkContrast(page: Page): Promise<{ checked: number; failures: ContrastFailure[] }> {
  return page.evaluate<{ checked: number; failures: ContrastFailure[] }>(CONTRAST_CHECK);
}

/** The focus outline of the element that has the focus, against its surroundings (WCAG 2 AA: 3:1). */
export function checkFocusOutline(
  page: Page,
): Promise<{ element: string; text: string; color: string; background: string; ratio: number }> {
  return page.evaluate(FOCUS_CHECK);
}

/**
 * Waits until `expr`, evaluated in the page, gives `expected`, then asserts it. Focus
 * moves in an effect after the render that shows the element, so a check made the
 * moment the element appears can run a frame too early.
 */
export async function expectInPage(
  page: Pick<Page, 'evaluate'>,
  expr: string,
  expected: unknown,
  what?: string,
  timeoutMs = 5_000,
): Promise<void> {
  const holds = async () => (await page.evaluate<unknown>(expr)) === expected;
  await until(holds, what ?? `${expr} gives ${String(expected)}`, timeoutMs).catch(() => undefined);
  // Asserted whatever the wait found, so a failure shows what the page gave instead.
  assert.equal(await page.evaluate<unknown>(expr), expected, what);
}
