#!/usr/bin/env node
// previewdb's npm launcher: runs the binary of the platform package that npm installed as an
// optional dependency (no install scripts). Built into the package by scripts/build-npm.sh.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');

const platforms = { 'linux x64': '@previewdb/linux-x64' };
const version = require('../package.json').version;
const where = `${process.platform} ${process.arch}`;
const pkg = platforms[where];

function fail(message, hints) {
  process.stderr.write(`previewdb: error: ${message}\n`);
  for (const h of hints) process.stderr.write(`hint: ${h}\n`);
  process.exit(1);
}

if (!pkg) {
  fail(`no previewdb binary for ${process.platform}/${process.arch} (there is one for: ` +
       `${Object.keys(platforms).join(', ')})`,
       ['run previewdb on Linux x64 (glibc 2.35 or newer), or build it from source (README.md)']);
}

let binary;
try {
  binary = require.resolve(`${pkg}/bin/previewdb`);
} catch (e) {
  fail(`the platform package ${pkg} is not installed, so there is no previewdb binary to run`,
       [`npm installs it as an optional dependency of previewdb: reinstall without ` +
        `--omit=optional / --no-optional (npm install previewdb), or add it yourself: ` +
        `npm install ${pkg}@${version}`,
        'on a system with musl (Alpine) instead of glibc it is skipped: use a glibc-based image']);
}

try {
  fs.accessSync(binary, fs.constants.X_OK);
} catch (e) {
  try { fs.chmodSync(binary, 0o755); } catch (e2) { /* reported by spawn below */ }
}

const r = spawnSync(binary, process.argv.slice(2), { stdio: 'inherit' });
if (r.error) fail(`cannot run ${binary}: ${r.error.message}`, []);
if (r.signal) process.kill(process.pid, r.signal);
process.exit(r.status === null ? 1 : r.status);
