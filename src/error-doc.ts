import { ERROR_AREAS, ERROR_CODES, type ErrorInfo } from './error-codes.js';

const HEADER = `# Error codes

Every error Trosyn Sync reports on purpose carries a stable code. The library throws
\`TrosynError\` subclasses with \`err.code\`; the wire protocol sends the code in an
\`error\` message before closing; the HTTP APIs return it as \`{ "code", "message" }\`
with the status given here; the CLI prints \`trosyn-sync: CODE: message\` and exits
non-zero. Codes never change meaning.

This page is generated from the code table, \`src/error-codes.ts\`
(\`npm run docs:errors\`); a test fails when the two differ.
`;

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** docs/ERRORS.md as the code table gives it (before markdown formatting). */
export function renderErrorsDoc(): string {
  const entries = Object.entries(ERROR_CODES) as Array<[string, ErrorInfo]>;
  const out = [HEADER];
  for (const area of ERROR_AREAS) {
    out.push(`## ${area.name}\n`);
    if (area.intro) out.push(`${area.intro}\n`);
    out.push('| code | status | meaning | what to do |', '| --- | --- | --- | --- |');
    for (const [code, info] of entries) {
      if (info.area !== area.name) continue;
      out.push(`| \`${code}\` | ${info.status ?? '-'} | ${cell(info.meaning)} | ${cell(info.fix)} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
