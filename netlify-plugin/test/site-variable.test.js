// site-variable.js against a local stand-in for Netlify's API (fake-netlify.js), answering with
// bodies written from Netlify's documented shapes (fixtures/netlify-api/README.md). What is
// checked is what previewdb sends, per Netlify's API reference:
//   https://open-api.netlify.com/#tag/environmentVariables (getEnvVar, createEnvVars,
//   setEnvVarValue, deleteEnvVarValue) and https://open-api.netlify.com/#tag/site (getSite);
//   https://docs.netlify.com/build/environment-variables/overview/ (contexts, branch values).
// No Netlify service is reached: its real answers are not verified here.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const net = require('net');

const { SiteVariable, main } = require('../site-variable');
const { fakeNetlify } = require('./fake-netlify');

const TOKEN = 'nfp_sitevariabletoken123';
const SITE = '3970e0fe-8564-4903-9a55-c5f8de49fb8b';
const VALUE = 'postgresql://app:s3cret-pw@db.example.com:5432/pr_7';
let api;

test.beforeEach(async () => { api = await fakeNetlify().start(); });
test.afterEach(async () => {
  assert.deepStrictEqual(api.pending(), [], 'every expected request was made');
  await api.close();
});

function client(extra = {}) {
  return new SiteVariable({ token: TOKEN, siteId: SITE, api: api.url, ...extra });
}

test('a site that has DATABASE_URL gets a value for the branch (setEnvVarValue)', async () => {
  api.expect('GET', `/sites/${SITE}`, 200, 'get-site.json');
  api.expect('GET', '/accounts/acme/env/DATABASE_URL', 200, 'get-env-var-site.json');
  api.expect('PATCH', '/accounts/acme/env/DATABASE_URL', 200, 'set-env-var-value.json');
  assert.strictEqual(await client().set('feature', VALUE), 'updated');
  assert.deepStrictEqual(api.requests.map((r) => `${r.method} ${r.path}`), [
    `GET /api/v1/sites/${SITE}`,
    'GET /api/v1/accounts/acme/env/DATABASE_URL',
    'PATCH /api/v1/accounts/acme/env/DATABASE_URL',
  ]);
  for (const r of api.requests) assert.strictEqual(r.authorization, `Bearer ${TOKEN}`);
  assert.deepStrictEqual(api.requests[0].query, {});
  assert.deepStrictEqual(api.requests[1].query, { site_id: SITE });
  assert.deepStrictEqual(api.requests[2].query, { site_id: SITE });
  assert.strictEqual(api.requests[2].contentType, 'application/json');
  assert.deepStrictEqual(api.requests[2].body,
                         { context: 'branch', context_parameter: 'feature', value: VALUE });
});

test('a site without the key gets it created with only the branch value (createEnvVars)', async () => {
  api.expect('GET', '/accounts/acme/env/PREVIEW_DATABASE_URL', 404, 'not-found.json');
  api.expect('POST', '/accounts/acme/env', 201, 'create-env-vars.json');
  // With the account given, the site is not looked up.
  const sv = client({ account: 'acme', key: 'PREVIEW_DATABASE_URL' });
  assert.strictEqual(await sv.set('feat/x', VALUE), 'created');
  const post = api.requests[1];
  assert.deepStrictEqual(post.query, { site_id: SITE });
  assert.deepStrictEqual(post.body, [{
    key: 'PREVIEW_DATABASE_URL',
    values: [{ context: 'branch', context_parameter: 'feat/x', value: VALUE }],
  }]);
});

test('remove deletes only the branch\'s value (deleteEnvVarValue)', async () => {
  api.expect('GET', '/accounts/acme/env/DATABASE_URL', 200, 'get-env-var-with-branch.json');
  api.expect('DELETE', '/accounts/acme/env/DATABASE_URL/value/7d2a3b8e-51c4-4a8e-9d0f-2b6c1e4f9a10',
             204);
  assert.strictEqual(await client({ account: 'acme' }).remove('feature'), 'removed');
  assert.deepStrictEqual(api.requests[1].query, { site_id: SITE });
  assert.strictEqual(api.requests[1].body, undefined);

  // Nothing for that branch (or no key at all): nothing deleted.
  api.expect('GET', '/accounts/acme/env/DATABASE_URL', 200, 'get-env-var-site.json');
  assert.strictEqual(await client({ account: 'acme' }).remove('feature'), 'absent');
  api.expect('GET', '/accounts/acme/env/DATABASE_URL', 404, 'not-found.json');
  assert.strictEqual(await client({ account: 'acme' }).remove('feature'), 'absent');
  assert.strictEqual(api.requests.filter((r) => r.method === 'DELETE').length, 1);
});

test('errors name the call and Netlify\'s message, never the token or the value', async () => {
  api.expect('GET', '/accounts/acme/env/DATABASE_URL', 200, 'get-env-var-site.json');
  api.expect('PATCH', '/accounts/acme/env/DATABASE_URL', 403, 'forbidden.json');
  await assert.rejects(client({ account: 'acme' }).set('feature', VALUE), (e) => {
    assert.match(e.message, /^Netlify API setEnvVarValue \(PATCH \/api\/v1\/accounts\/acme\/env\/DATABASE_URL\) answered 403: You don't have permission to access this resource \(the token must belong to a member of the site's team/);
    assert.ok(!e.message.includes(TOKEN) && !e.message.includes('s3cret-pw'), e.message);
    return true;
  });

  // Nothing listening: the connection's own error.
  const closed = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
  const unreachable = new SiteVariable({ token: TOKEN, siteId: SITE, account: 'acme',
                                         api: `http://127.0.0.1:${closed}/api/v1` });
  await assert.rejects(unreachable.set('feature', VALUE),
                       /^Error: Netlify API getEnvVar \(GET \/api\/v1\/accounts\/acme\/env\/DATABASE_URL\): .*ECONNREFUSED/);
  assert.throws(() => new SiteVariable({ siteId: SITE }), /no Netlify token/);
  assert.throws(() => new SiteVariable({ token: TOKEN }), /no site ID/);
});

test('the remove command, for a cleanup job or the webhook\'s host', async () => {
  api.expect('GET', `/sites/${SITE}`, 200, 'get-site.json');
  api.expect('GET', '/accounts/acme/env/DATABASE_URL', 200, 'get-env-var-with-branch.json');
  api.expect('DELETE', '/accounts/acme/env/DATABASE_URL/value/c3d4e5f6-0718-4a2b-9c3d-4e5f60718293',
             204);
  const line = await main(['remove', '--site', SITE, '--branch', 'other-feature'],
                          { NETLIFY_AUTH_TOKEN: TOKEN, NETLIFY_API_URL: api.url });
  assert.strictEqual(line, 'removed DATABASE_URL of branch other-feature');
  for (const r of api.requests) assert.strictEqual(r.authorization, `Bearer ${TOKEN}`);
  await assert.rejects(main(['remove', '--site', SITE], { NETLIFY_AUTH_TOKEN: TOKEN }), /usage:/);
  await assert.rejects(main(['remove', '--site', SITE, '--branch', 'x'], {}), /no Netlify token/);
});
