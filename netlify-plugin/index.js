// previewdb's Netlify build plugin (docs/CI.md, "The Netlify build plugin").
//   onPreBuild  deploy preview: `previewdb ci --provider netlify --json --hold`, which makes the
//               preview, prints the outcome, then keeps the preview marked in use (so a cleanup
//               never drops it mid-build) until its stdin closes at onEnd. DATABASE_URL of the build
//               set to the preview; with a Netlify token, also the site variable DATABASE_URL for
//               the deploy preview's branch (site-variable.js), for Functions. Production:
//               `--refresh-source` with on-production = base-branch, else nothing. Other contexts:
//               nothing.
//   onSuccess   logs the database the build used.
//   onError     with drop-on-error, drops the preview when this build created it (and removes the
//               branch's site variable value this build set).
//   onEnd       releases the hold.
// Nothing shown (status, failure, log) carries a password or the token: see scrub(), hide().
'use strict';

const { spawn, spawnSync } = require('child_process');

const { scrub, withPassword, resolveBinary, errorLines } = require('./lib');
const { SiteVariable, DEFAULT_API } = require('./site-variable');

// What one build's handlers share (Netlify runs them in one process, in order).
const state = { bin: null, preview: null, hold: null, outcome: null, siteVariable: null };

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

// `previewdb ARGS --hold` with its stdin on a pipe. Resolves when the run printed its outcome and
// then "holding NAME" ({held: true, stdout: the outcome, child}), or when it ended without holding
// (no preview, or a failure: {held: false, status, signal, stdout, stderr}).
function startCi(bin, args) {
  return new Promise((resolve) => {
    const child = spawn(bin.command, [...bin.prefix, ...args], {
      cwd: process.cwd(),
      env: process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let done = false;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      out += d;
      const m = /(^|\n)holding (\S+)\n/.exec(out);
      if (!done && m) {
        done = true;
        // Nothing here keeps the build's process alive; onEnd ends the hold.
        child.unref();
        for (const s of [child.stdin, child.stdout, child.stderr]) if (s.unref) s.unref();
        resolve({ held: true, name: m[2], stdout: out.slice(0, m.index + m[1].length), child,
                  stderr: () => err });
      }
    });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', (e) => {
      if (!done) {
        done = true;
        resolve({ held: false, error: e, status: null, signal: null, stdout: out, stderr: err });
      }
    });
    child.on('close', (status, signal) => {
      child.exited = true;
      if (!done) {
        done = true;
        resolve({ held: false, status, signal, stdout: out, stderr: err });
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
  state.siteVariable = null;
}

// The text without the given secrets (the token, the preview's URL with its password) and
// without passwords.
function hide(text, secrets) {
  let t = String(text == null ? '' : text);
  for (const s of secrets) if (s && s.length >= 3) t = t.split(s).join('***');
  return scrub(t);
}

function truthy(v) {
  return v === true || v === 'true';
}

// With a Netlify token: the site variable for the deploy preview's branch, so that Functions and
// server-side rendering see the preview too. Its failure is logged and the build goes on, unless
// the site-variable-required input says to fail.
async function setSiteVariable(inputs, constants, utils, name, url) {
  const token = inputs['netlify-token'] || process.env.NETLIFY_AUTH_TOKEN || '';
  const key = inputs['site-variable'] === undefined ? 'DATABASE_URL' : String(inputs['site-variable']);
  if (!key) return;  // site-variable = "": not wanted
  if (!token) {
    log('previewdb: no Netlify token (NETLIFY_AUTH_TOKEN): only the build sees ' + name +
        ', not Functions or server-side rendering');
    return;
  }
  const branch = process.env.HEAD || process.env.BRANCH || '';
  const secrets = [token, url];
  try {
    if (!branch) throw new Error('neither HEAD nor BRANCH names the deploy preview\'s branch');
    const sv = new SiteVariable({
      token,
      siteId: (constants && constants.SITE_ID) || process.env.SITE_ID || '',
      account: inputs['netlify-account'] || '',
      api: inputs['netlify-api-url'] || DEFAULT_API,
      key,
    });
    const outcome = await sv.set(branch, url);
    state.siteVariable = { sv, branch, secrets };
    log(`previewdb: ${outcome} the site variable ${key} for branch ${branch} (Functions and ` +
        `server-side rendering of this deploy preview use ${name})`);
  } catch (e) {
    const message = `previewdb: could not set the site variable ${key} for branch ` +
                    `${branch || '(unknown)'}: ${hide(e.message, secrets)}`;
    if (truthy(inputs['site-variable-required'])) return utils.build.failBuild(message);
    log(`${message}; the build goes on (only the build sees ${name})`);
  }
}

async function removeSiteVariable() {
  const set = state.siteVariable;
  if (!set) return;
  state.siteVariable = null;
  try {
    const outcome = await set.sv.remove(set.branch);
    log(`previewdb: ${outcome === 'removed' ? 'removed' : 'found no'} value of the site variable ` +
        `${set.sv.key} for branch ${set.branch}`);
  } catch (e) {
    log(`previewdb: could not remove the site variable ${set.sv.key} for branch ${set.branch}: ` +
        `${hide(e.message, set.secrets)}`);
  }
}

async function onPreBuild({ inputs = {}, netlifyConfig, utils, constants = {} }) {
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
    // --hold: the run itself keeps the preview in use until onEnd, with no gap after it made it.
    args = ['ci', '--provider', 'netlify', '--json', '--hold'];
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
  const r = args.includes('--hold') ? await startCi(bin, args) : run(bin, args);
  if (r.held) state.hold = r;
  if (r.error) {
    return utils.build.failBuild(
      `previewdb: cannot run ${bin.command} (from ${bin.from}): ${scrub(r.error.message)}; ` +
      'add previewdb to the devDependencies (npm install --save-dev previewdb) or set the binary input');
  }
  const stderr = r.held ? r.stderr() : r.stderr;
  log(stderr);
  let result = null;
  try {
    result = JSON.parse(r.stdout);
  } catch (e) {
    result = null;
  }
  if ((!r.held && r.status !== 0) || !result) {
    const message = (result && result.error) || errorLines(stderr) ||
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
  if (!r.held) {
    return utils.build.failBuild(`previewdb ci made ${name} but did not hold it for this build ` +
                                 `(exit ${r.status === null ? r.signal : r.status})`);
  }
  state.preview = { name, created: result.created === true, url: result['database-url'] };
  const url = withPassword(result['database-url']);
  netlifyConfig.build.environment.DATABASE_URL = url;
  utils.status.show({
    title: `previewdb: ${name}`,
    summary: scrub(`${result.message}. The build runs with DATABASE_URL set to ` +
                   `${result['database-url']}.`),
  });
  await setSiteVariable(inputs, constants, utils, name, url);
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
    await removeSiteVariable();
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
