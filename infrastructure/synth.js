'use strict';
/**
 * Synthesizes the CDK app into infrastructure/cdk.out/ with no AWS credentials and no network.
 * Compile first; the package script does both.
 *
 * @example
 * // npx tsc -p infrastructure/tsconfig.json && node infrastructure/synth.js
 */
const path = require('node:path');
const { App } = require('aws-cdk-lib');
const { buildApp } = require('./dist/infrastructure/bin/app.js');

const outdir = process.env.CDK_OUTDIR || path.join(__dirname, 'cdk.out');
const assembly = buildApp(new App({ outdir })).synth();
for (const stack of assembly.stacks) {
  console.log(`${stack.stackName}: ${path.relative(process.cwd(), path.join(outdir, stack.templateFile))}`);
}
