// A branch-scoped site environment variable through Netlify's REST API, so that a deploy
// preview's Functions and server-side rendering (which read the site's variables at run time, not
// the build's environment) see the preview database too.
//
// Netlify's documented API (https://open-api.netlify.com/#tag/environmentVariables):
//   getSite         GET    /sites/{site_id}                                  account_slug
//   getEnvVar       GET    /accounts/{account_id}/env/{key}?site_id=S        404: no such variable
//   createEnvVars   POST   /accounts/{account_id}/env?site_id=S              [{key, values: [...]}]
//   setEnvVarValue  PATCH  /accounts/{account_id}/env/{key}?site_id=S        {context, context_parameter, value}
//   deleteEnvVarValue DELETE /accounts/{account_id}/env/{key}/value/{id}?site_id=S
// A value for one branch is context "branch" with the branch's name in context_parameter.
// Authorization: "Bearer <personal access token>".
//
// Also a small command for a cleanup job or the webhook's host, which have no plugin:
//   NETLIFY_AUTH_TOKEN=... node site-variable.js remove --site SITE_ID --branch BRANCH [--key K]
// The value is a secret: it never appears in a message, and neither does the token.
'use strict';

const DEFAULT_API = 'https://api.netlify.com/api/v1';

class NetlifyApiError extends Error {}

class SiteVariable {
  // token: a Netlify personal access token; siteId: the site's API ID (SITE_ID in a build);
  // account: the team's slug (else read from the site); api: the API's base URL.
  constructor({ token, siteId, account = '', api = DEFAULT_API, key = 'DATABASE_URL' }) {
    if (!token) throw new NetlifyApiError('no Netlify token (netlify-token input or NETLIFY_AUTH_TOKEN)');
    if (!siteId) throw new NetlifyApiError('no site ID (SITE_ID is set in Netlify builds; --site elsewhere)');
    this.token = token;
    this.siteId = siteId;
    this.account = account;
    this.api = api.replace(/\/+$/, '');
    this.key = key;
  }

  // One API call; the answer's JSON (null for 204). Errors name the operation and Netlify's
  // message, never the token or a value sent.
  async call(operation, method, path, { query = {}, body, allow404 = false } = {}) {
    const url = new URL(this.api + path);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    let response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          Authorization: `Bearer ${this.token}`,
          Accept: 'application/json',
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30000),
      });
    } catch (e) {
      throw new NetlifyApiError(`Netlify API ${operation} (${method} ${url.pathname}): ` +
                                `${(e.cause && e.cause.message) || e.message}`);
    }
    const text = await response.text();
    if (allow404 && response.status === 404) return undefined;
    if (!response.ok) {
      let message = text.slice(0, 300);
      try {
        message = JSON.parse(text).message || message;
      } catch (e) {
        // not JSON: the start of the text
      }
      const hint = response.status === 401 || response.status === 403
        ? ' (the token must belong to a member of the site\'s team who may change its environment ' +
          'variables)'
        : '';
      throw new NetlifyApiError(`Netlify API ${operation} (${method} ${url.pathname}) answered ` +
                                `${response.status}: ${message}${hint}`);
    }
    if (!text) return null;
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new NetlifyApiError(`Netlify API ${operation} (${method} ${url.pathname}) answered ` +
                                `${response.status} with a body that is not JSON`);
    }
  }

  async accountId() {
    if (!this.account) {
      const site = await this.call('getSite', 'GET', `/sites/${encodeURIComponent(this.siteId)}`);
      if (!site || !site.account_slug) {
        throw new NetlifyApiError('Netlify API getSite answered without the site\'s account_slug; ' +
                                  'set the netlify-account input');
      }
      this.account = site.account_slug;
    }
    return this.account;
  }

  envPath(account, suffix = '') {
    return `/accounts/${encodeURIComponent(account)}/env${suffix}`;
  }

  // Sets the key's value for `branch` (creating the site variable when the site has none):
  // returns 'created' or 'updated'.
  async set(branch, value) {
    const account = await this.accountId();
    const query = { site_id: this.siteId };
    const keyPath = this.envPath(account, `/${encodeURIComponent(this.key)}`);
    const existing = await this.call('getEnvVar', 'GET', keyPath, { query, allow404: true });
    if (existing === undefined) {
      await this.call('createEnvVars', 'POST', this.envPath(account), {
        query,
        body: [{ key: this.key, values: [{ context: 'branch', context_parameter: branch, value }] }],
      });
      return 'created';
    }
    await this.call('setEnvVarValue', 'PATCH', keyPath, {
      query,
      body: { context: 'branch', context_parameter: branch, value },
    });
    return 'updated';
  }

  // Removes the key's value for `branch` (the site's other values stay): returns 'removed' or
  // 'absent'.
  async remove(branch) {
    const account = await this.accountId();
    const query = { site_id: this.siteId };
    const keyPath = this.envPath(account, `/${encodeURIComponent(this.key)}`);
    const existing = await this.call('getEnvVar', 'GET', keyPath, { query, allow404: true });
    const values = (existing && Array.isArray(existing.values)) ? existing.values : [];
    const mine = values.filter((v) => v.context === 'branch' && v.context_parameter === branch);
    for (const v of mine) {
      await this.call('deleteEnvVarValue', 'DELETE',
                      `${keyPath}/value/${encodeURIComponent(v.id)}`, { query });
    }
    return mine.length ? 'removed' : 'absent';
  }
}

// The command for hosts without the plugin (see the header).
async function main(argv, env) {
  const args = { key: 'DATABASE_URL', api: env.NETLIFY_API_URL || DEFAULT_API, account: '' };
  const rest = argv.slice();
  const verb = rest.shift();
  while (rest.length) {
    const flag = rest.shift();
    const value = rest.shift();
    const name = { '--site': 'siteId', '--branch': 'branch', '--key': 'key', '--account': 'account',
                   '--api': 'api' }[flag];
    if (!name || value === undefined) {
      throw new NetlifyApiError(`unexpected argument ${JSON.stringify(flag)}; usage: ` +
                                'site-variable.js remove --site SITE_ID --branch BRANCH [--key KEY]');
    }
    args[name] = value;
  }
  if (verb !== 'remove' || !args.branch) {
    throw new NetlifyApiError('usage: NETLIFY_AUTH_TOKEN=... node site-variable.js remove ' +
                              '--site SITE_ID --branch BRANCH [--key DATABASE_URL]');
  }
  const sv = new SiteVariable({ ...args, token: env.NETLIFY_AUTH_TOKEN });
  const outcome = await sv.remove(args.branch);
  return `${outcome === 'removed' ? 'removed' : 'no value for'} ${sv.key} of branch ${args.branch}`;
}

if (require.main === module) {
  main(process.argv.slice(2), process.env).then(
    (line) => console.log(line),
    (e) => {
      console.error(`site-variable: ${e.message}`);
      process.exitCode = e instanceof NetlifyApiError ? 1 : 2;
    });
}

module.exports = { SiteVariable, NetlifyApiError, DEFAULT_API, main };
