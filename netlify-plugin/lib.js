// The plugin's pure parts (index.js has the handlers): hiding passwords, the preview's URL for
// the build, finding the previewdb binary, previewdb's error lines.
'use strict';

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

// Secrets to hide: the passwords of the connection URLs in the environment.
function secrets(env) {
  const out = [];
  for (const key of ['DATABASE_URL', 'DIRECT_URL']) {
    const v = env[key];
    if (!v) continue;
    try {
      const u = new URL(v);
      if (u.password) out.push(u.password, decodeURIComponent(u.password));
    } catch (e) {
      const m = /(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/.exec(v);
      if (m) out.push(m[1].replace(/^'|'$/g, ''));
    }
  }
  if (env.PGPASSWORD) out.push(env.PGPASSWORD);
  return out.filter((s) => s.length >= 3);
}

// The text without passwords: URL userinfo passwords, password=... pairs, and the literal
// passwords of the environment's connection settings.
function scrub(text, env = process.env) {
  let s = String(text == null ? '' : text);
  s = s.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):[^@/?#\s]*@/gi, '$1@');
  s = s.replace(/(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)/gi, '$1***');
  for (const secret of secrets(env)) s = s.split(secret).join('***');
  return s;
}

// The preview's URL as previewdb reports it has no password (outputs never carry one); the build
// needs the one of the server's URL it was made from (DATABASE_URL, else DIRECT_URL).
function withPassword(previewUrl, env = process.env) {
  let preview;
  try {
    preview = new URL(previewUrl);
  } catch (e) {
    return previewUrl;
  }
  if (preview.password) return previewUrl;
  for (const key of ['DATABASE_URL', 'DIRECT_URL']) {
    try {
      const site = new URL(env[key] || '');
      if (site.password && site.username === preview.username && site.host === preview.host) {
        preview.password = site.password;
        return preview.toString();
      }
    } catch (e) {
      // not a URL: libpq reads the password from the environment or ~/.pgpass
    }
  }
  return previewUrl;
}

// How to run previewdb: the `binary` input, else the site's @previewdb/linux-x64 binary (what the
// previewdb npm package's launcher runs), else the launcher itself, else previewdb on PATH.
function resolveBinary(inputs, cwd = process.cwd()) {
  if (inputs && inputs.binary) {
    const file = path.resolve(cwd, String(inputs.binary));
    if (!fs.existsSync(file)) {
      throw new Error(`the binary input names ${file}, which does not exist ` +
                      '(set it to the path of the previewdb binary, or remove it to use the ' +
                      "site's previewdb npm package)");
    }
    return { command: file, prefix: [], from: 'the binary input' };
  }
  const req = createRequire(path.join(cwd, 'package.json'));
  try {
    return { command: req.resolve('@previewdb/linux-x64/bin/previewdb'), prefix: [],
             from: 'the @previewdb/linux-x64 npm package' };
  } catch (e) {
    // next
  }
  try {
    return { command: process.execPath, prefix: [req.resolve('previewdb/bin/previewdb.js')],
             from: 'the previewdb npm package' };
  } catch (e) {
    // next
  }
  return { command: 'previewdb', prefix: [], from: 'PATH' };
}

// previewdb's own error line(s) from stderr ("previewdb: error: ..." and its hints).
function errorLines(stderr) {
  const lines = String(stderr || '').split('\n')
    .filter((l) => l.startsWith('previewdb: error:') || l.startsWith('hint:'));
  return lines.map((l) => l.replace(/^previewdb: error:\s*/, '')).join('; ');
}

module.exports = { scrub, withPassword, resolveBinary, errorLines };
