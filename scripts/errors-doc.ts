// Writes docs/ERRORS.md from the code table (src/error-codes.ts), formatted as the
// rest of the docs are. `npm run docs:errors`; a test checks the file is current.
import { writeFileSync } from 'node:fs';
import { formatErrorsDoc } from '../test/fixtures/errors-doc.js';

writeFileSync('docs/ERRORS.md', await formatErrorsDoc());
