// The Netlify build plugin's handlers, called the way Netlify calls them (utils.status.show,
// utils.build.failBuild that throws, netlifyConfig.build.environment), against a real PostgreSQL
// (previewdb's own local server in a temporary PREVIEWDB_HOME), a real git repository and the
// built previewdb binary (PREVIEWDB_BIN, set by ctest; else build/previewdb).
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const plugin = require('..');
const { scrub, withPassword, resolveBinary } = require('../lib');

const BIN = path.resolve(process.env.PREVIEWDB_BIN ||
                         path.join(__dirname, '..', '..', 'build', 'previewdb'));
const SECRET = 'ghs_netlifysecret123';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'previewdb-netlify-'));
// Reachable by PostgreSQL's user (tests run as root), so the server's files stay in tmp and go
// with it, instead of a directory under /var/tmp that outlives the test.
fs.chmodSync(tmp, 0o755);
const home = path.join(tmp, 'home');
const work = path.join(tmp, 'work');
let serverUrl;

// Nothing from the surrounding CI may point previewdb elsewhere.
for (const key of Object.keys(process.env)) {
  if (/^(GITHUB_|PG|PREVIEWDB_|NETLIFY|RUNNER_)/.test(key) ||
      ['CI', 'CONTEXT', 'REVIEW_ID', 'PULL_REQUEST', 'BRANCH', 'HEAD', 'COMMIT_REF',
       'REPOSITORY_URL', 'DATABASE_URL', 'DIRECT_URL'].includes(key)) {
    delete process.env[key];
  }
}

function cli(args, env = {}, cwd = work) {
  const r = spawnSync(BIN, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function git(args, cwd = work) {
  const r = spawnSync('git', ['-c', 'init.defaultBranch=main', '-c', 'commit.gpgsign=false',
                              '-c', 'protocol.file.allow=always', ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, GIT_AUTHOR_NAME: 'Test', GIT_AUTHOR_EMAIL: 'test@example.com',
           GIT_COMMITTER_NAME: 'Test', GIT_COMMITTER_EMAIL: 'test@example.com',
           GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
  });
  assert.strictEqual(r.status, 0, `git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function commit(file, content, message) {
  fs.mkdirSync(path.dirname(path.join(work, file)), { recursive: true });
  fs.writeFileSync(path.join(work, file), content);
  git(['add', '--', file]);
  git(['commit', '-q', '-m', message]);
}

function databases() {
  const r = cli(['list', '--json'], { DATABASE_URL: serverUrl });
  assert.strictEqual(r.code, 0, r.err);
  return JSON.parse(r.out).map((d) => d.name);
}

// Netlify's objects: status.show records, failBuild throws (as Netlify's does), and everything
// the plugin logs is captured to be checked for secrets.
function netlify() {
  const shown = [];
  const failures = [];
  return {
    shown,
    failures,
    netlifyConfig: { build: { environment: {} } },
    utils: {
      status: { show: (s) => shown.push(s) },
      build: {
        failBuild: (message) => {
          failures.push(message);
          const e = new Error(message);
          e.failBuild = true;
          throw e;
        },
      },
    },
  };
}

async function captured(fn) {
  const lines = [];
  const original = console.log;
  console.log = (...a) => lines.push(a.join(' '));
  try {
    await fn();
  } finally {
    console.log = original;
  }
  return lines.join('\n');
}

function deployPreview(pr, extra = {}) {
  Object.assign(process.env, {
    DATABASE_URL: serverUrl, NETLIFY: 'true', CONTEXT: 'deploy-preview', REVIEW_ID: String(pr),
    BRANCH: 'feature', HEAD: 'feature',
    REPOSITORY_URL: `https://x-access-token:${SECRET}@github.com/acme/shop`, ...extra,
  });
}

test.before(() => {
  const start = cli(['local', 'start'], { PREVIEWDB_HOME: home }, tmp);
  assert.strictEqual(start.code, 0, start.err);
  const url = cli(['local', 'url', '--database', 'postgres'], { PREVIEWDB_HOME: home }, tmp);
  assert.strictEqual(url.code, 0, url.err);
  serverUrl = url.out.trim();

  // origin (bare) and work: main with 0001, feature adding 0002 (as tests/harness/git_repo.cpp).
  git(['init', '--bare', '-q', path.join(tmp, 'origin.git')], tmp);
  git(['clone', '-q', path.join(tmp, 'origin.git'), work], tmp);
  git(['symbolic-ref', 'HEAD', 'refs/heads/main']);
  commit('migrations/schema/0001_init.sql',
         'CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL);\n', 'initial schema');
  git(['push', '-q', 'origin', 'main']);
  const migrated = cli(['migrate', '--database', 'dev'], { DATABASE_URL: serverUrl });
  assert.strictEqual(migrated.code, 0, migrated.err);
  assert.strictEqual(cli(['snapshot'], { DATABASE_URL: serverUrl }).code, 0);
  git(['checkout', '-q', '-b', 'feature']);
  commit('migrations/schema/0002_add_email.sql', 'ALTER TABLE users ADD COLUMN email text;\n',
         'add email');
  git(['push', '-q', 'origin', 'feature']);
  process.chdir(work);
});

test.after(() => {
  cli(['local', 'stop'], { PREVIEWDB_HOME: home }, tmp);
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('a deploy preview gets pr_<N>, held until onEnd, its URL in the build environment', async () => {
  deployPreview(7);
  const n = netlify();
  const logged = await captured(() => plugin.onPreBuild({ inputs: { binary: BIN }, ...n }));
  assert.deepStrictEqual(n.failures, []);
  assert.match(n.netlifyConfig.build.environment.DATABASE_URL, /\/pr_7\?/);
  assert.strictEqual(n.shown.length, 1);
  assert.strictEqual(n.shown[0].title, 'previewdb: pr_7');
  assert.match(n.shown[0].summary, /pr_7 created from snapshot/);
  assert.ok(databases().includes('pr_7'));

  // Held: a cleanup (the nightly one, say) keeps it while the build runs.
  const kept = cli(['cleanup', 'pr_7', '--yes'], { DATABASE_URL: serverUrl });
  assert.strictEqual(kept.code, 6, kept.err);
  // The hold is the ci run's own (ci --hold): nothing between making pr_7 and holding it.
  assert.match(kept.err, /kept pr_7: .*previewdb ci --hold \(pid \d+\)/);

  const success = await captured(() => plugin.onSuccess({}));
  assert.match(success, /this build used the preview database pr_7/);
  await plugin.onEnd({});
  const dropped = cli(['cleanup', 'pr_7', '--yes'], { DATABASE_URL: serverUrl });
  assert.strictEqual(dropped.code, 0, dropped.err);
  assert.ok(!databases().includes('pr_7'));

  const everything = JSON.stringify(n.shown) + logged + success;
  assert.ok(!everything.includes(SECRET), everything);
});

test('previewdb failing fails the build with its message and no password', async () => {
  deployPreview(9, { DATABASE_URL: 'postgresql://alice:sekrit-pass-42@127.0.0.1:1/postgres' });
  const n = netlify();
  const logged = await captured(async () => {
    await assert.rejects(plugin.onPreBuild({ inputs: { binary: BIN }, ...n }),
                         (e) => e.failBuild === true);
  });
  assert.strictEqual(n.failures.length, 1);
  assert.match(n.failures[0], /^previewdb ci failed \(exit 3\): /);
  assert.ok(!(n.failures[0] + logged).includes('sekrit-pass-42'), n.failures[0] + logged);
  assert.deepStrictEqual(n.netlifyConfig.build.environment, {});
  await plugin.onEnd({});

  deployPreview('abc');
  const bad = netlify();
  await assert.rejects(plugin.onPreBuild({ inputs: { binary: BIN }, ...bad }));
  assert.match(bad.failures[0], /REVIEW_ID must be a pull request number/);

  deployPreview(9);
  const missing = netlify();
  await assert.rejects(plugin.onPreBuild({ inputs: { binary: path.join(tmp, 'nope') }, ...missing }));
  assert.match(missing.failures[0], /the binary input names .*nope, which does not exist/);
});

test('drop-on-error drops a preview this build created, never an earlier one', async () => {
  deployPreview(8);
  const first = netlify();
  await plugin.onPreBuild({ inputs: { binary: BIN, 'drop-on-error': true }, ...first });
  assert.ok(databases().includes('pr_8'));
  await captured(() => plugin.onError({ inputs: { binary: BIN, 'drop-on-error': true } }));
  await plugin.onEnd({});
  assert.ok(!databases().includes('pr_8'), 'the failed build made it: dropped');

  // An earlier build made pr_8; this one reuses it and fails: pr_8 stays.
  await plugin.onPreBuild({ inputs: { binary: BIN }, ...netlify() });
  await plugin.onEnd({});
  const again = netlify();
  await plugin.onPreBuild({ inputs: { binary: BIN, 'drop-on-error': true }, ...again });
  assert.match(again.shown[0].summary, /pr_8 reused/);
  const log = await captured(() => plugin.onError({ inputs: { 'drop-on-error': true } }));
  assert.match(log, /keeping pr_8: an earlier build created it/);
  await plugin.onEnd({});
  assert.ok(databases().includes('pr_8'));

  // Without the input nothing is dropped.
  assert.strictEqual(cli(['cleanup', 'pr_8', '--yes'], { DATABASE_URL: serverUrl }).code, 0);
  const plain = netlify();
  await plugin.onPreBuild({ inputs: { binary: BIN }, ...plain });
  await plugin.onError({ inputs: {} });
  await plugin.onEnd({});
  assert.ok(databases().includes('pr_8'));
});

test('production: nothing by default, the base-branch refresh with on-production', async () => {
  git(['checkout', '-q', 'main']);
  try {
    Object.assign(process.env, { DATABASE_URL: serverUrl, NETLIFY: 'true', CONTEXT: 'production',
                                 BRANCH: 'main', HEAD: 'main' });
    delete process.env.REVIEW_ID;
    const nothing = netlify();
    await plugin.onPreBuild({ inputs: { binary: BIN }, ...nothing });
    assert.strictEqual(nothing.shown[0].title, 'previewdb: nothing to do');
    assert.deepStrictEqual(nothing.netlifyConfig.build.environment, {});

    const before = databases().length;
    const refresh = netlify();
    await plugin.onPreBuild({ inputs: { binary: BIN, 'on-production': 'base-branch' }, ...refresh });
    assert.deepStrictEqual(refresh.failures, []);
    assert.strictEqual(refresh.shown[0].title, 'previewdb: dev refreshed');
    assert.deepStrictEqual(refresh.netlifyConfig.build.environment, {});
    assert.strictEqual(databases().length, before + 1, 'a new snapshot of dev');
    await plugin.onEnd({});

    const wrong = netlify();
    await assert.rejects(plugin.onPreBuild({ inputs: { 'on-production': 'always' }, ...wrong }));
    assert.match(wrong.failures[0], /on-production input is "always"; set it to "nothing" or "base-branch"/);

    process.env.CONTEXT = 'branch-deploy';
    const branch = netlify();
    await plugin.onPreBuild({ inputs: { binary: BIN, 'on-production': 'base-branch' }, ...branch });
    assert.strictEqual(branch.shown[0].title, 'previewdb: nothing to do');
  } finally {
    git(['checkout', '-q', 'feature']);
  }
});

test('the binary comes from the site\'s npm packages when the input is not set', () => {
  const site = path.join(tmp, 'site');
  const pkg = path.join(site, 'node_modules', '@previewdb', 'linux-x64');
  fs.mkdirSync(path.join(pkg, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(pkg, 'package.json'), '{"name":"@previewdb/linux-x64"}');
  fs.symlinkSync(BIN, path.join(pkg, 'bin', 'previewdb'));
  const found = resolveBinary({}, site);
  // (Node's resolution follows the symlink to the binary it stands for.)
  assert.strictEqual(fs.realpathSync(found.command), fs.realpathSync(BIN));
  assert.strictEqual(found.from, 'the @previewdb/linux-x64 npm package');
  assert.strictEqual(spawnSync(found.command, ['version'], { encoding: 'utf8' }).status, 0);

  const launcherOnly = path.join(tmp, 'site2');
  fs.mkdirSync(path.join(launcherOnly, 'node_modules', 'previewdb', 'bin'), { recursive: true });
  fs.writeFileSync(path.join(launcherOnly, 'node_modules', 'previewdb', 'bin', 'previewdb.js'), '');
  const launcher = resolveBinary({}, launcherOnly);
  assert.strictEqual(launcher.command, process.execPath);
  assert.match(launcher.prefix[0], /node_modules\/previewdb\/bin\/previewdb\.js$/);

  assert.strictEqual(resolveBinary({}, path.join(tmp, 'empty')).command, 'previewdb');
});

test('scrub and withPassword', () => {
  const env = { DATABASE_URL: 'postgresql://app:p%40ss-word@db.example.com:5432/shop' };
  assert.strictEqual(scrub('postgres://u:secret@h/db and https://x:tok@github.com/a/b', {}),
                     'postgres://u@h/db and https://x@github.com/a/b');
  assert.strictEqual(scrub("host=h password='a b' dbname=x", {}), 'host=h password=*** dbname=x');
  assert.strictEqual(scrub('the password p@ss-word leaked', env), 'the password *** leaked');
  assert.strictEqual(withPassword('postgresql://app@db.example.com:5432/pr_3?sslmode=require', env),
                     'postgresql://app:p%40ss-word@db.example.com:5432/pr_3?sslmode=require');
  // Another server or user: no password from the site's URL.
  assert.strictEqual(withPassword('postgresql://app@other.example.com/pr_3', env),
                     'postgresql://app@other.example.com/pr_3');
  assert.strictEqual(withPassword('postgresql://previewdb@/pr_3?host=/run/pg', env),
                     'postgresql://previewdb@/pr_3?host=/run/pg');
});

// The site variable for Functions (site-variable.js), through the handlers, against a local
// stand-in for Netlify's API (fake-netlify.js; bodies from Netlify's documented shapes, see
// test/fixtures/netlify-api/README.md and the API reference cited in site-variable.test.js).
const { fakeNetlify } = require('./fake-netlify');

const NETLIFY_TOKEN = 'nfp_plugintoken0123456789';
const SITE_ID = '3970e0fe-8564-4903-9a55-c5f8de49fb8b';

async function withNetlifyApi(fn) {
  const api = await fakeNetlify().start();
  try {
    await fn(api);
    assert.deepStrictEqual(api.pending(), [], 'every expected request was made');
  } finally {
    await api.close();
    delete process.env.NETLIFY_AUTH_TOKEN;
    delete process.env.SITE_ID;
  }
}

test('with a token, the branch gets DATABASE_URL as a site variable; a dropped preview\'s is removed', async () => {
  await withNetlifyApi(async (api) => {
    deployPreview(11, { NETLIFY_AUTH_TOKEN: NETLIFY_TOKEN });
    api.expect('GET', `/sites/${SITE_ID}`, 200, 'get-site.json');
    api.expect('GET', '/accounts/acme/env/DATABASE_URL', 404, 'not-found.json');
    api.expect('POST', '/accounts/acme/env', 201, 'create-env-vars.json');
    const inputs = { binary: BIN, 'drop-on-error': true, 'netlify-api-url': api.url };
    const n = netlify();
    const logged = await captured(() => plugin.onPreBuild({
      inputs, constants: { SITE_ID }, ...n }));
    assert.deepStrictEqual(n.failures, []);
    const url = n.netlifyConfig.build.environment.DATABASE_URL;
    assert.match(url, /\/pr_11\?/);
    // (The value is the build's DATABASE_URL: with the site's password when its server URL has
    // one. This local server's socket URL has none; site-variable.test.js checks a password.)
    assert.deepStrictEqual(api.requests.map((r) => `${r.method} ${r.path}`), [
      `GET /api/v1/sites/${SITE_ID}`,
      'GET /api/v1/accounts/acme/env/DATABASE_URL',
      'POST /api/v1/accounts/acme/env',
    ]);
    for (const r of api.requests) assert.strictEqual(r.authorization, `Bearer ${NETLIFY_TOKEN}`);
    assert.deepStrictEqual(api.requests[1].query, { site_id: SITE_ID });
    assert.deepStrictEqual(api.requests[2].query, { site_id: SITE_ID });
    assert.deepStrictEqual(api.requests[2].body, [{
      key: 'DATABASE_URL',
      values: [{ context: 'branch', context_parameter: 'feature', value: url }],
    }]);
    assert.match(logged, /created the site variable DATABASE_URL for branch feature/);

    // The build fails; drop-on-error drops pr_11 and removes the branch's value (only it).
    api.expect('GET', '/accounts/acme/env/DATABASE_URL', 200, 'get-env-var-with-branch.json');
    api.expect('DELETE',
               '/accounts/acme/env/DATABASE_URL/value/7d2a3b8e-51c4-4a8e-9d0f-2b6c1e4f9a10', 204);
    const dropped = await captured(() => plugin.onError({ inputs }));
    await plugin.onEnd({});
    assert.ok(!databases().includes('pr_11'));
    assert.match(dropped, /removed value of the site variable DATABASE_URL for branch feature/);
    assert.strictEqual(api.requests[4].method, 'DELETE');
    assert.deepStrictEqual(api.requests[4].query, { site_id: SITE_ID });

    const everything = JSON.stringify(n.shown) + logged + dropped;
    assert.ok(!everything.includes(NETLIFY_TOKEN), everything);
  });
});

test('a Netlify API error is logged and the build goes on, unless site-variable-required', async () => {
  await withNetlifyApi(async (api) => {
    deployPreview(12, { SITE_ID });
    api.expect('GET', `/sites/${SITE_ID}`, 403, 'forbidden.json');
    const n = netlify();
    const logged = await captured(() => plugin.onPreBuild({
      inputs: { binary: BIN, 'netlify-token': NETLIFY_TOKEN, 'netlify-api-url': api.url }, ...n }));
    assert.deepStrictEqual(n.failures, []);
    assert.match(n.netlifyConfig.build.environment.DATABASE_URL, /\/pr_12\?/);
    assert.match(logged, new RegExp(
      'could not set the site variable DATABASE_URL for branch feature: Netlify API getSite ' +
      `\\(GET /api/v1/sites/${SITE_ID}\\) answered 403: You don't have permission.*` +
      'the build goes on \\(only the build sees pr_12\\)'));
    await plugin.onEnd({});

    api.expect('GET', '/accounts/acme/env/DATABASE_URL', 403, 'forbidden.json');
    const strict = netlify();
    const log2 = await captured(async () => {
      await assert.rejects(plugin.onPreBuild({
        inputs: { binary: BIN, 'netlify-token': NETLIFY_TOKEN, 'netlify-api-url': api.url,
                  'netlify-account': 'acme', 'site-variable-required': true },
        ...strict }), (e) => e.failBuild === true);
    });
    await plugin.onEnd({});
    assert.match(strict.failures[0], /^previewdb: could not set the site variable DATABASE_URL for branch feature: Netlify API getEnvVar .* answered 403/);
    const everything = logged + log2 + strict.failures.join('\n');
    assert.ok(!everything.includes(NETLIFY_TOKEN), everything);
    // The value sent is never in a message about the call.
    assert.ok(!strict.failures[0].includes(strict.netlifyConfig.build.environment.DATABASE_URL));
  });
});
