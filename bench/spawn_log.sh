#!/usr/bin/env bash
# Where one `previewdb spawn` spends its time (issue 15): every statement the server logs for one
# spawn (log_min_duration_statement = 0, which logs each statement once, with its text and its
# duration: parse, bind and execute of a parameterised one are added up; log_connections), with its duration
# and the time the client took before sending it (process start, connection, previewdb's own
# work), next to the whole process's time. Not a test.
#
#   bench/spawn_log.sh [PREVIEWDB_BIN]
#
# Environment: SCALES (pgbench scales, default "2 70": about 37 MB and 1 GB), WORK (scratch
# directory; default a temporary one under /var/tmp, removed at exit). The server is previewdb's
# embedded PostgreSQL (durable: fsync on) under $WORK/home, reached over its unix socket.
#
# Per scale: pgbench -i into dev, `previewdb snapshot`, one untimed spawn (the snapshot's clone is
# the only evidence before it: the first spawn tries the other strategy), then, after a CHECKPOINT,
# the measured `previewdb spawn --json`. Prints the statements of that spawn's session(s), in order,
# as: offset from the process start (ms), the client's gap before the statement (ms), the server's
# duration (ms), the statement (first 110 characters).
set -euo pipefail

BIN=$(realpath "${1:-${PREVIEWDB_BIN:-build/previewdb}}")
SCALES=${SCALES:-"2 70"}
if [[ -z "${WORK:-}" ]]; then
  WORK=$(mktemp -d /var/tmp/previewdb-spawn-log-XXXXXX)
  # Reachable by the server's user, so its files stay in $WORK (else /var/tmp, left behind).
  chmod 755 "$WORK"
  trap '"$BIN" local stop >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
fi
unset DATABASE_URL DIRECT_URL PGDATABASE PREVIEWDB_POOL_SIZE || true
cd "$WORK"  # outside any git repository
export PREVIEWDB_USER=bench PGOPTIONS="-c client_min_messages=warning"
export PREVIEWDB_HOME="$WORK/home"
"$BIN" local start -q >/dev/null
BASE=$("$BIN" local url | sed 's#/dev?#/postgres?#')
SOCKET=$(sed -E 's#.*host=([^&]*).*#\1#' <<<"$BASE")
PORT=$(sed -E 's#.*port=([0-9]+).*#\1#' <<<"$BASE")
export PGHOST=$SOCKET PGPORT=$PORT PGUSER=previewdb
LOG=$(dirname "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data_dir"])' "$WORK/home/cluster.json")")/server.log
psql -X -q -d postgres <<'SQL'
ALTER SYSTEM SET log_min_duration_statement = 0;
ALTER SYSTEM SET log_connections = on;
ALTER SYSTEM SET log_disconnections = on;
ALTER SYSTEM SET log_line_prefix = '%m [%p] %a: ';
SELECT pg_reload_conf();
SQL

for scale in $SCALES; do
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS dev WITH (FORCE)" -c "CREATE DATABASE dev"
  pgbench -q -i -s "$scale" dev >/dev/null 2>&1
  size=$(psql -X -At -d dev -c "SELECT pg_size_pretty(pg_database_size('dev'))")
  "$BIN" snapshot -q >/dev/null
  "$BIN" spawn warmup --json -q >/dev/null
  psql -X -q -d postgres -c "CHECKPOINT"
  start_line=$(wc -l <"$LOG")
  t0=$(date +%s.%N)
  out=$("$BIN" spawn "measured_$scale" --json -q)
  t1=$(date +%s.%N)
  sleep 0.3  # the server writes its last lines (disconnection)
  echo "== scale $scale ($size): $(python3 -c "print(f'{($t1 - $t0) * 1000:.0f}')") ms, strategy $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["strategy"])' "$out"); load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
  tail -n +"$((start_line + 1))" "$LOG" >"$WORK/spawn.log"
  python3 - "$t0" "$WORK/spawn.log" <<'PY'
import re, sys, datetime
t0 = float(sys.argv[1])
line_re = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) (\w+) \[(\d+)\] ([^:]*): (.*)$')
events = []  # (time, pid, application, text); continuation lines join their statement
for raw in open(sys.argv[2]):
    raw = raw.rstrip('\n')
    if raw.startswith('\t') and events:
        ts_, pid_, app_, text_ = events[-1]
        events[-1] = (ts_, pid_, app_, text_ + ' ' + raw.strip())
        continue
    m = line_re.match(raw)
    if not m:
        continue
    ts = datetime.datetime.strptime(m.group(1), '%Y-%m-%d %H:%M:%S.%f')
    ts = ts.replace(tzinfo=datetime.timezone.utc) if m.group(2) == 'UTC' else ts.astimezone()
    text = re.sub(r'^(LOG|DETAIL|WARNING|ERROR|NOTICE):\s+', '', m.group(5))
    if m.group(5).startswith('DETAIL:'):
        continue
    events.append((ts.timestamp(), m.group(3), m.group(4), text))
# The spawn's own sessions: those whose application_name is previewdb (psql's are not).
pids = {pid for _, pid, app, _ in events if app.startswith('previewdb')}
count = 0
last_end = t0
print(f"{'at':>8} {'gap':>7} {'took':>8}  statement")
pending = {}  # pid -> [start, total] of a parameterised statement's parse and bind
for ts, pid, app, text in events:
    if pid not in pids and not text.startswith('connection received'):
        continue
    m = re.match(r'duration: ([\d.]+) ms\s+(statement|execute [^:]*|parse [^:]*|bind [^:]*): (.*)', text)
    if m:
        took = float(m.group(1)) / 1000
        kind = m.group(2).split()[0]
        if kind in ('parse', 'bind'):
            p = pending.setdefault(pid, [ts - took, 0.0])
            p[1] += took
            continue
        begin, total = ts - took, took
        if pid in pending:
            begin, extra = pending.pop(pid)
            total += extra
        count += 1
        stmt = ' '.join(m.group(3).split())
        print(f"{(ts - t0) * 1000:8.1f} {(begin - last_end) * 1000:7.1f} {total * 1000:8.2f}  {stmt[:110]}")
        last_end = ts
    elif text.startswith(('connection received', 'connection authorized', 'disconnection')):
        print(f"{(ts - t0) * 1000:8.1f} {'':>7} {'':>8}  [{pid}] {text[:100]}")
print(f"statements: {count}")
PY
  psql -X -q -d postgres -c "DROP DATABASE \"dev_bench_measured_$scale\"" -c "DROP DATABASE \"dev_bench_warmup\""
done
