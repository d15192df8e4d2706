/**
 * The dashboard as built into the package (`npm run build`, which `npm test`
 * runs first): its JavaScript stays within the budget of 200 KB gzipped, and
 * the page names files that exist.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';

const BUILT = join('dist', 'dashboard');
const BUDGET_BYTES = 200 * 1024;

describe('the built dashboard', () => {
  it('is built into dist/dashboard', () => {
    assert.ok(existsSync(join(BUILT, 'index.html')), 'run `npm run build` first');
  });

  it(`ships at most ${BUDGET_BYTES / 1024} KB of JavaScript, gzipped`, () => {
    const scripts = readdirSync(join(BUILT, 'assets')).filter((f) => f.endsWith('.js'));
    assert.ok(scripts.length > 0, 'there is JavaScript to measure');
    let raw = 0;
    let gzipped = 0;
    for (const file of scripts) {
      const body = readFileSync(join(BUILT, 'assets', file));
      raw += body.length;
      gzipped += gzipSync(body, { level: 9 }).length;
    }
    console.log(
      `dashboard JavaScript: ${scripts.length} file(s), ${(raw / 1024).toFixed(1)} KB, ${(gzipped / 1024).toFixed(1)} KB gzipped (budget ${BUDGET_BYTES / 1024} KB)`,
    );
    assert.ok(gzipped <= BUDGET_BYTES, `${gzipped} bytes gzipped is over the budget of ${BUDGET_BYTES}`);
  });

  it('has a page whose scripts and styles exist, none of them inline (the hub allows no inline script)', () => {
    const html = readFileSync(join(BUILT, 'index.html'), 'utf8');
    const refs = [...html.matchAll(/(?:src|href)="(\/[^"]+)"/g)].map((m) => m[1] as string);
    assert.ok(
      refs.some((r) => r.endsWith('.js')),
      'the page loads a script',
    );
    for (const ref of refs) assert.ok(existsSync(join(BUILT, ref)), `${ref} exists`);
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
  });
});
