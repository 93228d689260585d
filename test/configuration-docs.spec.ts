import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { environmentVariables, optionPaths, tableNames } from './support/configuration-names';

const root = resolve(__dirname, '..');
const page = readFileSync(join(root, 'docs', 'CONFIGURATION.md'), 'utf8');
const sorted = (names: Iterable<string>) => [...names].sort();

// docs/CONFIGURATION.md and the code cannot drift: every option of the module's options types and
// every environment variable the example app and the command-line tools read has a row there, and
// every row names one that exists.
describe('docs/CONFIGURATION.md', () => {
  it('has a row for every option of AuditModuleOptions, AuditModuleExtras and their nested option types, and no other', () => {
    const options = optionPaths(join(root, 'src', 'audit', 'index.ts'));
    expect([...options]).toEqual(
      expect.arrayContaining([
        'mode',
        'userIdFrom',
        'diffs.exclude',
        'integrity.entryKeys',
        'partitions.monthsAhead',
        'http.viewer',
        'dataSource',
      ]),
    );
    expect(sorted(tableNames(page, 'Module options'))).toEqual(sorted(options));
  });

  it('has a row for every environment variable that src/ reads (the app, the CLIs), and no other', () => {
    const variables = environmentVariables(join(root, 'src'));
    expect([...variables]).toEqual(
      expect.arrayContaining(['PORT', 'DATABASE_URL', 'AUDIT_TABLE', 'SENTRY_ENVIRONMENT', 'AUDIT_INTEGRITY_ENTRY_KEY']),
    );
    expect([...variables]).not.toContain('AUDIT_ENTRY_SECRET'); // only in a JSDoc example
    expect(sorted(tableNames(page, 'Environment variables'))).toEqual(sorted(variables));
  });

  it('reads the names of a section, not of the others', () => {
    const markdown = ['## A', '| name | x |', '| --- | --- |', '| `a.b`, `c` | `not this` |', '## B', '| `d` | |'].join('\n');
    expect(sorted(tableNames(markdown, 'A'))).toEqual(['a.b', 'c']);
  });
});
