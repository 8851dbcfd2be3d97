// previewdb's Netlify build plugin (docs/CI.md, "The Netlify build plugin").
//   onPreBuild  deploy preview: `previewdb ci --provider netlify --json`; DATABASE_URL of the build
//               set to the preview; the preview held (`previewdb hold NAME`) until onEnd so that a
//               cleanup never drops it mid-build. Production: `--refresh-source` with
//               on-production = base-branch, else nothing. Other contexts: nothing.
//   onSuccess   logs the database the build used.
//   onError     with drop-on-error, drops the preview when this build created it.
//   onEnd       releases the hold.
// Nothing shown (status, failure, log) carries a password: see scrub().
'use strict';

const { spawn, spawnSync } = require('child_process');

const { scrub, withPassword, resolveBinary, errorLines } = require('./lib');

// What one build's handlers share (Netlify runs them in one process, in order).
const state = { bin: null, preview: null, hold: null, outcome: null };

function run(bin, args, options = {}) {
  return spawnSync(bin.command, [...bin.prefix, ...args], {
    cwd: process.cwd(),
    env: process.env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...options,
  });
}

function log(text) {
  const t = scrub(text).replace(/\s+$/, '');
  if (t) console.log(t);
}

// `previewdb hold NAME` with its stdin on a pipe: resolves with the process once it printed
// "holding NAME"; rejects with previewdb's message when it ends before.
function startHold(bin, name) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin.command, [...bin.prefix, 'hold', name], {
      cwd: process.cwd(),
      env: process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let held = false;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      out += d;
      if (!held && out.split('\n').includes(`holding ${name}`)) {
        held = true;
        // Nothing here keeps the build's process alive; onEnd ends the hold.
        child.unref();
        for (const s of [child.stdin, child.stdout, child.stderr]) if (s.unref) s.unref();
        resolve({ child, stderr: () => err });
      }
    });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', (e) => { if (!held) reject(e); });
    child.on('exit', (code, signal) => {
      child.exited = true;
      if (!held) {
        reject(new Error(errorLines(err) ||
                         `previewdb hold ${name} ended (${signal || `exit ${code}`}) before holding it`));
      }
    });
  });
}

// Ends the hold: closes its stdin and waits for it (SIGTERM after 10 s).
async function releaseHold() {
  const hold = state.hold;
  state.hold = null;
  if (!hold || hold.child.exited) return;
  const { child } = hold;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.stdin.end();
  const timer = setTimeout(() => child.kill('SIGTERM'), 10000);
  await gone;
  clearTimeout(timer);
}

function reset() {
  state.bin = null;
  state.preview = null;
  state.outcome = null;
}

async function onPreBuild({ inputs = {}, netlifyConfig, utils }) {
  if (state.hold) await releaseHold();
  reset();
  const context = process.env.CONTEXT || '';
  const onProduction = inputs['on-production'] || 'nothing';
  if (!['nothing', 'base-branch'].includes(onProduction)) {
    return utils.build.failBuild(`previewdb: the on-production input is "${scrub(onProduction)}"; ` +
                                 'set it to "nothing" or "base-branch"');
  }
  let args;
  if (context === 'deploy-preview') {
    args = ['ci', '--provider', 'netlify', '--json'];
  } else if (context === 'production' && onProduction === 'base-branch') {
    args = ['ci', '--provider', 'netlify', '--refresh-source', '--json'];
  } else {
    const why = context === 'production'
      ? 'production deploy (on-production: nothing)'
      : `${context || 'local'} build: previews are made for deploy previews only`;
    utils.status.show({ title: 'previewdb: nothing to do', summary: why });
    return;
  }

  let bin;
  try {
    bin = resolveBinary(inputs);
  } catch (e) {
    return utils.build.failBuild(`previewdb: ${scrub(e.message)}`);
  }
  state.bin = bin;
  const r = run(bin, args);
  if (r.error) {
    return utils.build.failBuild(
      `previewdb: cannot run ${bin.command} (from ${bin.from}): ${scrub(r.error.message)}; ` +
      'add previewdb to the devDependencies (npm install --save-dev previewdb) or set the binary input');
  }
  log(r.stderr);
  let result = null;
  try {
    result = JSON.parse(r.stdout);
  } catch (e) {
    result = null;
  }
  if (r.status !== 0 || !result) {
    const message = (result && result.error) || errorLines(r.stderr) ||
                    `exited with ${r.signal || r.status}`;
    return utils.build.failBuild(
      `previewdb ci failed (exit ${r.status === null ? r.signal : r.status}): ${scrub(message)}`);
  }
  state.outcome = result;
  if (!result.preview) {
    utils.status.show({
      title: result.reason === 'base-branch'
        ? `previewdb: ${result['database-name']} refreshed`
        : 'previewdb: no preview database',
      summary: scrub(result.message || `reason: ${result.reason}`),
    });
    return;
  }

  const name = result['database-name'];
  try {
    state.hold = await startHold(bin, name);
  } catch (e) {
    return utils.build.failBuild(`previewdb: could not mark ${name} in use for this build: ` +
                                 scrub(e.message));
  }
  state.preview = { name, created: result.created === true, url: result['database-url'] };
  netlifyConfig.build.environment.DATABASE_URL = withPassword(result['database-url']);
  utils.status.show({
    title: `previewdb: ${name}`,
    summary: scrub(`${result.message}. The build runs with DATABASE_URL set to ` +
                   `${result['database-url']}.`),
  });
}

async function onSuccess() {
  if (state.preview) {
    log(`previewdb: this build used the preview database ${state.preview.name} ` +
        `(${state.preview.url})`);
  } else if (state.outcome) {
    log(`previewdb: no preview database for this build (${state.outcome.reason}); ` +
        'DATABASE_URL was left as the site sets it');
  }
}

async function onError({ inputs = {} }) {
  const preview = state.preview;
  if (!preview || !inputs['drop-on-error']) return;
  if (!preview.created) {
    log(`previewdb: keeping ${preview.name}: an earlier build created it`);
    return;
  }
  await releaseHold();  // our own hold would make cleanup keep it
  const r = run(state.bin, ['cleanup', preview.name, '--yes']);
  log(r.stderr);
  if (r.status === 0) {
    log(`previewdb: dropped ${preview.name}, which this failed build created`);
    state.preview = null;
  } else {
    log(`previewdb: could not drop ${preview.name} (exit ${r.status}): ` +
        (errorLines(r.stderr) || (r.error && r.error.message) || 'see above'));
  }
}

async function onEnd() {
  await releaseHold();
}

// Netlify accepts only event handlers here (the helpers are in lib.js).
module.exports = { onPreBuild, onSuccess, onError, onEnd };
