// A local stand-in for api.netlify.com: answers the requests a test expects, in any order, with
// the bodies in fixtures/netlify-api (written from Netlify's documented shapes: see the README
// there), and records every request (method, path, query, Authorization header, JSON body) for
// the test to assert. A request nobody expected gets a 500 and is recorded too.
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');

const FIXTURES = path.join(__dirname, 'fixtures', 'netlify-api');

function fakeNetlify() {
  const requests = [];
  const routes = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const url = new URL(req.url, 'http://localhost');
      requests.push({
        method: req.method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        authorization: req.headers.authorization,
        contentType: req.headers['content-type'],
        body: body ? JSON.parse(body) : undefined,
      });
      const i = routes.findIndex((r) => r.method === req.method && r.path === url.pathname);
      if (i < 0) {
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ code: 500, message: `unexpected ${req.method} ${url.pathname}` }));
        return;
      }
      const [route] = routes.splice(i, 1);
      res.writeHead(route.status, route.fixture ? { 'Content-Type': 'application/json' } : {});
      res.end(route.fixture ? fs.readFileSync(path.join(FIXTURES, route.fixture)) : '');
    });
  });
  return {
    requests,
    // The next `method path` (under /api/v1) is answered with `status` and the fixture's body.
    expect(method, apiPath, status, fixture) {
      routes.push({ method, path: `/api/v1${apiPath}`, status, fixture });
    },
    pending: () => routes.map((r) => `${r.method} ${r.path}`),
    url: '',
    async start() {
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      this.url = `http://127.0.0.1:${server.address().port}/api/v1`;
      return this;
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

module.exports = { fakeNetlify, FIXTURES };
