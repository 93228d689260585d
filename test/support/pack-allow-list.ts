/**
 * What the npm package may hold, as patterns over the paths `npm pack --json` lists: the built
 * module and its typings (no specs), the migrations, the viewer's page, the documentation, and
 * the package's own files. Anything else (tests, the example app, benchmarks, `.data`, keys,
 * sources) is unexpected.
 */
export const PACK_ALLOW_LIST: readonly RegExp[] = [
  /^package\.json$/,
  /^README\.md$/,
  /^LICENSE$/,
  /^CHANGELOG\.md$/,
  /^docs\/[\w-]+\.(md|png)$/,
  /^dist\/src\/audit\/(?:[\w-]+\/)*(?![\w.-]*\.(?:spec|e2e-spec)\.)[\w.-]+\.(?:js|d\.ts)$/,
  /^dist\/migrations\/\d+-\w+\.(?:js|d\.ts)$/,
  /^src\/audit\/viewer\/assets\/[\w-]+\.(?:html|js|css|svg)$/,
];

/**
 * The paths that no pattern of {@link PACK_ALLOW_LIST} allows.
 *
 * @example
 * unexpectedPackFiles(['README.md', 'test/x.e2e-spec.ts']); // ['test/x.e2e-spec.ts']
 */
export function unexpectedPackFiles(paths: readonly string[]): string[] {
  return paths.filter((path) => !PACK_ALLOW_LIST.some((pattern) => pattern.test(path)));
}
