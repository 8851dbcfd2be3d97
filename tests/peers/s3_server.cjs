// An S3-compatible server for the integration tests: the real s3rver (npm) behind a front that
// s3rver lacks. The front, written independently of previewdb's signer (node's crypto, its own
// canonical form), checks every request's AWS Signature Version 4 and answers 403 on a wrong
// secret; it also answers ListMultipartUploads and AbortMultipartUpload from s3rver's upload
// folders, logs each request (one JSON line in DIR/requests.log), and injects failures listed in
// DIR/faults.json ([{"method": "PUT", "query": "partNumber", "status": 503, "times": 2}]).
//
//   node s3_server.cjs --dir DIR --bucket NAME --access-key K --secret S [--region R]
// prints "listening PORT" once ready (NODE_PATH must reach s3rver; see tests/harness/s3_server).
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const S3rver = require('s3rver');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const dir = args.dir;
const bucket = args.bucket;
const accessKey = args['access-key'];
const secret = args.secret;
const region = args.region || 'us-east-1';
const dataDir = path.join(dir, 'data');
const logFile = path.join(dir, 'requests.log');
const faultsFile = path.join(dir, 'faults.json');
fs.mkdirSync(dataDir, { recursive: true });

function sha256hex(data) {
  return crypto.createHash('sha256').update(data).digest('hex');
}
function hmac(key, data) {
  return crypto.createHmac('sha256', key).update(data).digest();
}
// RFC 3986: encodeURIComponent leaves !'()* alone, SigV4 does not.
function rfc3986(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}
function decode(s) {
  return decodeURIComponent(s.replace(/\+/g, '%20'));
}

function xmlError(res, status, code, message) {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
}

// The canonical request built from the raw request line and headers, as a server would.
function verify(req, body) {
  const auth = req.headers.authorization || '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return ['AccessDenied', 'missing or malformed Authorization'];
  const [, key, day, reg, signedHeaders, signature] = m;
  if (key !== accessKey) return ['InvalidAccessKeyId', 'unknown access key'];
  if (reg !== region) return ['AuthorizationHeaderMalformed', 'wrong region ' + reg];
  const date = req.headers['x-amz-date'] || '';
  if (!date.startsWith(day)) return ['AccessDenied', 'x-amz-date does not match the scope'];
  const when = Date.UTC(+date.slice(0, 4), +date.slice(4, 6) - 1, +date.slice(6, 8), +date.slice(9, 11), +date.slice(11, 13), +date.slice(13, 15));
  if (Math.abs(Date.now() - when) > 15 * 60 * 1000) return ['RequestTimeTooSkewed', 'clock skew'];
  const payload = req.headers['x-amz-content-sha256'];
  if (!payload) return ['AccessDenied', 'no x-amz-content-sha256'];
  if (payload !== 'UNSIGNED-PAYLOAD' && payload !== sha256hex(body)) return ['XAmzContentSHA256Mismatch', 'body hash differs'];
  const names = signedHeaders.split(';');
  if (!names.includes('host') || !names.includes('x-amz-date')) return ['AccessDenied', 'host and x-amz-date must be signed'];
  const [rawPath, rawQuery = ''] = req.url.split(/\?(.*)/s);
  const query = rawQuery === '' ? [] : rawQuery.split('&').map(p => {
    const eq = p.indexOf('=');
    const k = eq < 0 ? p : p.slice(0, eq);
    const v = eq < 0 ? '' : p.slice(eq + 1);
    return [rfc3986(decode(k)), rfc3986(decode(v))];
  });
  query.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  const canonicalHeaders = names.map(n => {
    const v = req.headers[n];
    if (v === undefined) return null;
    return n + ':' + String(v).trim().replace(/\s+/g, ' ') + '\n';
  });
  if (canonicalHeaders.includes(null)) return ['AccessDenied', 'a signed header is missing'];
  const canonical = [req.method, rawPath, query.map(([k, v]) => k + '=' + v).join('&'), canonicalHeaders.join(''), signedHeaders, payload].join('\n');
  const scope = `${day}/${reg}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', date, scope, sha256hex(canonical)].join('\n');
  const kSigning = hmac(hmac(hmac(hmac('AWS4' + secret, day), reg), 's3'), 'aws4_request');
  const expected = hmac(kSigning, toSign).toString('hex');
  if (!crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(signature))) return ['SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.'];
  return null;
}

function uploadsDir(b) {
  return path.join(dataDir, b, '._S3rver_uploads');
}

function listUploads(res, b, prefix) {
  let xml = `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult><Bucket>${b}</Bucket>`;
  const d = uploadsDir(b);
  for (const id of fs.existsSync(d) ? fs.readdirSync(d) : []) {
    let key;
    try { key = fs.readFileSync(path.join(d, id, 'key'), 'utf8'); } catch { continue; }
    if (prefix && !key.startsWith(prefix)) continue;
    const initiated = fs.statSync(path.join(d, id, 'key')).mtime.toISOString();
    xml += `<Upload><Key>${key}</Key><UploadId>${id}</UploadId><Initiated>${initiated}</Initiated></Upload>`;
  }
  xml += '<IsTruncated>false</IsTruncated></ListMultipartUploadsResult>';
  res.writeHead(200, { 'content-type': 'application/xml' });
  res.end(xml);
}

function abortUpload(res, b, uploadId) {
  const d = path.join(uploadsDir(b), path.basename(uploadId));
  if (!fs.existsSync(d)) return xmlError(res, 404, 'NoSuchUpload', 'no such upload');
  fs.rmSync(d, { recursive: true, force: true });
  res.writeHead(204);
  res.end();
}

function takeFault(method, query) {
  if (!fs.existsSync(faultsFile)) return null;
  const faults = JSON.parse(fs.readFileSync(faultsFile, 'utf8'));
  for (const f of faults) {
    if (f.times > 0 && f.method === method && (!f.query || query.includes(f.query))) {
      f.times -= 1;
      fs.writeFileSync(faultsFile, JSON.stringify(faults));
      return f;
    }
  }
  return null;
}

async function main() {
  const backend = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dataDir, configureBuckets: [{ name: bucket }] });
  const addr = await backend.run();
  const front = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', c => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const [rawPath, rawQuery = ''] = req.url.split(/\?(.*)/s);
      const params = new URLSearchParams(rawQuery);
      const log = status => fs.appendFileSync(logFile, JSON.stringify({ method: req.method, path: rawPath, query: rawQuery, status, bytes: body.length }) + '\n');
      const problem = verify(req, body);
      if (problem) {
        log(403);
        return xmlError(res, 403, problem[0], problem[1]);
      }
      const fault = takeFault(req.method, rawQuery);
      if (fault) {
        log(fault.status);
        return xmlError(res, fault.status, fault.code || 'InjectedFault', 'injected by the test');
      }
      const segments = rawPath.split('/').filter(Boolean);
      if (req.method === 'GET' && segments.length === 1 && params.has('uploads')) {
        log(200);
        return listUploads(res, segments[0], params.get('prefix') || '');
      }
      if (req.method === 'DELETE' && segments.length >= 2 && params.has('uploadId')) {
        log(204);
        return abortUpload(res, segments[0], params.get('uploadId'));
      }
      const headers = { ...req.headers };
      delete headers.authorization;
      headers['content-length'] = String(body.length);
      delete headers['transfer-encoding'];
      delete headers.expect;
      const fwd = http.request({ host: '127.0.0.1', port: addr.port, method: req.method, path: req.url, headers }, up => {
        log(up.statusCode);
        res.writeHead(up.statusCode, up.headers);
        up.pipe(res);
      });
      fwd.on('error', e => xmlError(res, 502, 'BadGateway', String(e)));
      fwd.end(body);
    });
  });
  front.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening ${front.address().port}\n`);
  });
}

main().catch(e => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
