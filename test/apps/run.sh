#!/usr/bin/env bash
# Fresh Nest apps install the packed library and run the examples of the README and docs/
# unchanged: test/apps/nest11 and test/apps/nest12 (CommonJS), and test/apps/nest12-esm, an
# ESM app as today's `nest new` makes it ("type": "module", `module`/`moduleResolution`
# nodenext, isolatedModules), where relative imports need their `.js` and the library is
# imported from ESM (named imports of a CommonJS package); its cluster workers fork the
# same ESM entry. Each app:
#
#   quick-start  the README's "Quick start" files (db.ts, users-backfill.ts, app.module.ts,
#                main.ts: one host, the default store, 4 workers) over a fresh PostgreSQL
#                `users` table made by its CREATE TABLE: exit 0 on its own,
#                prints "<rows> users in … ms", every row updated exactly once; its
#                ./parallel-worker.db exists, and started again it prints "0 users";
#   many-hosts   the "Many hosts" AppModule of docs/many-hosts.md (+ the Quick start's job and main.ts) started
#                twice at once with REDIS_URL: both exit 0 on their own, both print the
#                whole run ("<rows> users"), every row updated exactly once;
#   dashboard-express, dashboard-fastify
#                the "Dashboard" AppModule of docs/operating.md (+ the Quick start's job) as an HTTP app on
#                that adapter, a free port and REDIS_URL: the page, live.json and its
#                assets are served; a control without the x-parallel-worker-dashboard
#                header is 403, pause with it 409 "no active run"; then one run of the
#                job by the Many hosts app (another process, same Redis) shows on the
#                page as completed with its <rows> ids, and reset from the page is 200.
#                The app must still be up at the end; it is killed then (and on exit).
#
# The code blocks are written into each app's src/ at test time by
# support/extract-readme.js; the README and docs/ are only read. The dashboard step's
# HTTP checks are support/dashboard-check.js.
#
# usage: test/apps/run.sh [nest11|nest12|nest12-esm …]   (default: all three)
# env:   PW_TEST_DATABASE_URL (postgres://postgres@127.0.0.1:5432/test), PW_TEST_REDIS_URL
#        (redis://127.0.0.1:6379; the apps use its db 11, 12 and 13), APPS_ROWS (20000),
#        APPS_TIMEOUT (120 s per process), APPS_EXIT_GRACE (20 s from the summary line to
#        the process exit), APPS_KEEP=1 keeps the temp dir, APPS_README (README.md of the
#        repo) extracts the examples from another file and the docs/ next to it (to try a change first).
# Needs the npm registry (npm ci, npm install of the tarball), PostgreSQL and Redis.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
database_url=${PW_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
redis_base=${PW_TEST_REDIS_URL:-redis://127.0.0.1:6379}
redis_base=${redis_base%/}
rows=${APPS_ROWS:-20000}
timeout_s=${APPS_TIMEOUT:-120}
exit_grace=${APPS_EXIT_GRACE:-20}
readme=${APPS_README:-$root/README.md}
apps=("$@")
unset REDIS_URL # only the many-hosts and dashboard steps set it
[[ ${#apps[@]} -gt 0 ]] || apps=(nest11 nest12 nest12-esm)

# The line the Quick start's main.ts prints in the primary: `${summary.ids} users in ${summary.durationMs} ms`.
summary_re='^([0-9]+) users in ([0-9]+) ms$'

work=$(mktemp -d "${TMPDIR:-/tmp}/pw-apps.XXXXXX")
results=()
failed=0
schemas=()
app_pids=() # the dashboard apps (their `timeout` wrappers), killed on exit if still up
started=$SECONDS

stop_pid() { # pid: TERM (timeout passes it on to its process group), then wait
  kill -0 "$1" 2>/dev/null || return 0
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  for pid in "${app_pids[@]}"; do stop_pid "$pid"; done
  for entry in "${schemas[@]}"; do
    (cd "${entry%%:*}" && DATABASE_URL=$database_url node "$here/support/fixture.js" drop "${entry#*:}") >/dev/null 2>&1 || true
  done
  if [[ $rc -ne 0 || ${APPS_KEEP:-0} == 1 ]]; then
    echo "apps: logs and app copies kept in $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

result() { # PASS|FAIL app step message
  local line
  line=$(printf '%s %s %s: %s' "$1" "$2" "$3" "$4")
  results+=("$line")
  echo "==> $line"
  [[ $1 == PASS ]] || failed=1
}

show_log() { # file: the last lines, indented
  echo "---- last lines of $1"
  tail -n 40 "$1" | sed 's/^/    /'
  echo "----"
}

# Starts `node <main>` in the background under `timeout` (which signals its whole
# process group, cluster workers included); sets $host_pid.
start_host() { # log main
  timeout -k 10 "$timeout_s" node "$2" >"$1" 2>&1 &
  host_pid=$!
}

# Waits for a host started by start_host. Sets $host_state: exit:<rc> (exited on its
# own), hung (printed its summary but was still running $exit_grace s later: killed),
# timeout (neither within $timeout_s).
wait_host() { # pid log
  local pid=$1 log=$2 begin=$SECONDS done_at='' rc=0
  while kill -0 "$pid" 2>/dev/null; do
    if [[ -z $done_at ]] && grep -Eq "$summary_re" "$log" 2>/dev/null; then done_at=$SECONDS; fi
    if [[ -n $done_at ]] && (( SECONDS - done_at > exit_grace )); then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      host_state=hung
      return 0
    fi
    sleep 0.5
  done
  wait "$pid" || rc=$?
  if [[ $rc -eq 124 || $rc -eq 137 ]] && (( SECONDS - begin >= timeout_s )); then host_state=timeout; else host_state=exit:$rc; fi
}

run_host() { # log main state_file: start_host + wait_host, the state written to state_file
  start_host "$1" "$2"
  wait_host "$host_pid" "$1"
  echo "$host_state" >"$3"
}

describe_host() { # name state log -> a reason when the host failed, empty when it exited 0
  local name=$1 state=$2 log=$3
  case $state in
    exit:0) ;;
    hung) echo "$name printed its summary, then did not exit within ${exit_grace}s (app.close() left the process running; killed)" ;;
    timeout) echo "$name did not finish within ${timeout_s}s (killed)" ;;
    *) echo "$name exited ${state#exit:}" ;;
  esac
}

printed_ids() { # log -> the ids of the summary line, or empty
  grep -E "$summary_re" "$1" | tail -n 1 | sed -E "s/$summary_re/\\1/" || true
}

verify_rows() { # app_dir schema out_file
  (cd "$1" && DATABASE_URL=$database_url node "$here/support/fixture.js" verify "$2" "$rows") >"$3" 2>&1
}

echo "apps: building nestjs-parallel-worker in $root"
(cd "$root" && npm run build >"$work/lib-build.log" 2>&1) || { show_log "$work/lib-build.log"; echo "apps: FAIL: npm run build of the library"; exit 1; }
tarball=$(cd "$root" && npm pack --silent --pack-destination "$work" 2>"$work/pack.log" | tail -n 1)
tarball=$work/$tarball
[[ -f $tarball ]] || { show_log "$work/pack.log"; echo "apps: FAIL: npm pack"; exit 1; }
echo "apps: packed $tarball ($(du -k "$tarball" | cut -f1) kB)"

for app in "${apps[@]}"; do
  [[ -f $here/$app/package.json ]] || { result FAIL "$app" setup "no $here/$app/package.json"; continue; }
  dir=$work/$app
  mkdir -p "$dir"
  # The committed app only: never a local node_modules/ or dist/.
  (cd "$here/$app" && tar --exclude=./node_modules --exclude=./dist -cf - .) | (cd "$dir" && tar -xf -)
  node "$here/support/extract-readme.js" "$readme" "$dir"

  t=$SECONDS
  if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error && npm install --no-save --no-audit --no-fund --loglevel=error "$tarball") >"$dir/install.log" 2>&1; then
    show_log "$dir/install.log"; result FAIL "$app" install "npm ci / npm install of the tarball failed"; continue
  fi
  versions=$(cd "$dir" && node -p "['@nestjs/core','@nestjs/common','nestjs-parallel-worker','ioredis','typescript'].map(p => p.replace('@nestjs/','') + ' ' + require(p + '/package.json').version).join(', ')")
  result PASS "$app" install "$versions ($((SECONDS - t))s)"

  t=$SECONDS
  if ! (cd "$dir" && npx --no-install nest build) >"$dir/build.log" 2>&1; then
    show_log "$dir/build.log"; result FAIL "$app" build "nest build failed"; continue
  fi
  result PASS "$app" build "nest build ($((SECONDS - t))s)"

  schema="pw_apps_${app//[!a-z0-9]/_}_$$" # a plain SQL identifier (nest12-esm: pw_apps_nest12_esm_…)
  schemas+=("$dir:$schema")
  export DATABASE_URL=$database_url PGOPTIONS="-c search_path=$schema"

  # (a) Quick start: one host, the default store (./parallel-worker.db).
  t=$SECONDS
  (cd "$dir" && node "$here/support/fixture.js" seed "$schema" "$rows")
  log=$dir/quick-start.log
  (cd "$dir" && run_host "$log" dist/quick-start/main.js "$dir/quick-start.state")
  state=$(cat "$dir/quick-start.state")
  reason=$(describe_host "the process" "$state" "$log")
  ids=$(printed_ids "$log")
  verify_rows "$dir" "$schema" "$dir/quick-start.verify" || reason="${reason:+$reason; }rows not each handled once: $(cat "$dir/quick-start.verify")"
  [[ $ids == "$rows" ]] || reason="${reason:+$reason; }printed ${ids:-no summary line} instead of '$rows users in … ms'"
  # The default store keeps the cursor in ./parallel-worker.db: the same main.ts again has nothing new to do.
  [[ -f $dir/parallel-worker.db ]] || reason="${reason:+$reason; }no parallel-worker.db in the app's directory after the run"
  if [[ -z $reason ]]; then
    (cd "$dir" && run_host "$dir/quick-start-again.log" dist/quick-start/main.js "$dir/quick-start-again.state")
    again=$(printed_ids "$dir/quick-start-again.log")
    [[ $again == 0 ]] || { show_log "$dir/quick-start-again.log"; reason="the second start printed ${again:-no summary line} instead of '0 users in … ms' (it did not resume from the stored cursor)"; }
  fi
  if [[ -z $reason ]]; then
    result PASS "$app" quick-start "$rows users, each once ($(cat "$dir/quick-start.verify")), exit 0; started again: 0 users ($((SECONDS - t))s)"
  else
    show_log "$log"; result FAIL "$app" quick-start "$reason"
  fi

  # (b) Many hosts: two processes at once on one Redis (a db of its own per app).
  t=$SECONDS
  # A Redis db of its own per app: nest11 11, nest12 12, nest12-esm 13.
  case $app in
    nest12-esm) redis_db=13 ;;
    *) redis_db=${app//[!0-9]/} ;;
  esac
  redis_url="$redis_base/$redis_db"
  (cd "$dir" && node "$here/support/fixture.js" seed "$schema" "$rows" && node "$here/support/fixture.js" redis-clean "$redis_url" users)
  export REDIS_URL=$redis_url
  (cd "$dir"
    run_host "$dir/many-hosts.a.log" dist/many-hosts/main.js "$dir/many-hosts.a.state" &
    run_host "$dir/many-hosts.b.log" dist/many-hosts/main.js "$dir/many-hosts.b.state" &
    wait)
  unset REDIS_URL
  reason=''
  for h in a b; do
    state=$(cat "$dir/many-hosts.$h.state" 2>/dev/null || echo unknown)
    r=$(describe_host "host $h" "$state" "$dir/many-hosts.$h.log")
    ids=$(printed_ids "$dir/many-hosts.$h.log")
    [[ $ids == "$rows" ]] || r="${r:+$r; }host $h printed ${ids:-no summary line} instead of '$rows users in … ms'"
    [[ -z $r ]] || { show_log "$dir/many-hosts.$h.log"; reason="${reason:+$reason; }$r"; }
  done
  verify_rows "$dir" "$schema" "$dir/many-hosts.verify" || reason="${reason:+$reason; }rows not each handled once: $(cat "$dir/many-hosts.verify")"
  (cd "$dir" && node "$here/support/fixture.js" redis-clean "$redis_url" users) >/dev/null 2>&1 || true
  if [[ -z $reason ]]; then
    result PASS "$app" many-hosts "2 hosts on $redis_url, one run of $rows users, each once ($(cat "$dir/many-hosts.verify")), both exit 0 ($((SECONDS - t))s)"
  else
    result FAIL "$app" many-hosts "$reason"
  fi

  # (c) Dashboard: the README's Dashboard AppModule + the Quick start job, an HTTP
  # app on each adapter, over the same Redis db; the run it shows is made by the
  # Many hosts app in another process.
  for adapter in express fastify; do
    t=$SECONDS
    step=dashboard-$adapter
    reason=''
    export REDIS_URL=$redis_url
    (cd "$dir" && node "$here/support/fixture.js" seed "$schema" "$rows" && node "$here/support/fixture.js" redis-clean "$redis_url" users)
    log=$dir/$step.log
    export PW_HTTP_ADAPTER=$adapter PORT=0
    start_host "$log" "$dir/dist/dashboard/main.js" # a child of this shell, to be waited for
    unset PW_HTTP_ADAPTER PORT
    app_pid=$host_pid
    app_pids+=("$app_pid")
    url=''
    for _ in $(seq 1 60); do # up to 30 s for the "listening on <url>" line
      url=$(grep -Eo 'listening on http://127\.0\.0\.1:[0-9]+' "$log" 2>/dev/null | head -n 1 | sed 's/^listening on //' || true)
      [[ -n $url ]] && break
      kill -0 "$app_pid" 2>/dev/null || break
      sleep 0.5
    done
    if [[ -z $url ]]; then
      reason="the $adapter app printed no 'listening on http://127.0.0.1:<port>' line within 30s"
    elif ! node "$here/support/dashboard-check.js" "$url/jobs" idle >"$dir/$step.idle" 2>&1; then
      reason="before a run: $(grep -m1 FAIL "$dir/$step.idle" || tail -n 1 "$dir/$step.idle")"
    else
      (cd "$dir" && run_host "$dir/$step.run.log" dist/many-hosts/main.js "$dir/$step.run.state")
      reason=$(describe_host "the run's host (many-hosts main.js)" "$(cat "$dir/$step.run.state")" "$dir/$step.run.log")
      ids=$(printed_ids "$dir/$step.run.log")
      [[ $ids == "$rows" ]] || reason="${reason:+$reason; }the run's host printed ${ids:-no summary line} instead of '$rows users in … ms'"
      verify_rows "$dir" "$schema" "$dir/$step.verify" || reason="${reason:+$reason; }rows not each handled once: $(cat "$dir/$step.verify")"
      [[ -z $reason ]] || show_log "$dir/$step.run.log"
      if [[ -z $reason ]] && ! node "$here/support/dashboard-check.js" "$url/jobs" done "$rows" >"$dir/$step.done" 2>&1; then
        reason="after the run: $(grep -m1 FAIL "$dir/$step.done" || tail -n 1 "$dir/$step.done")"
      fi
    fi
    if ! kill -0 "$app_pid" 2>/dev/null; then
      rc=0
      wait "$app_pid" 2>/dev/null || rc=$?
      reason="${reason:+$reason; }the $adapter app was no longer running at the end (exit $rc)"
    fi
    stop_pid "$app_pid"
    (cd "$dir" && node "$here/support/fixture.js" redis-clean "$redis_url" users) >/dev/null 2>&1 || true
    unset REDIS_URL
    if [[ -z $reason ]]; then
      platform=$(cd "$dir" && node -p "const p = '$adapter', n = '@nestjs/platform-' + p; p + ' ' + require(require.resolve(p + '/package.json', { paths: [require.resolve(n)] })).version + ' (' + n + ' ' + require(n + '/package.json').version + ')'" 2>/dev/null || echo "$adapter")
      result PASS "$app" "$step" "$platform on $url/jobs: page, live.json, assets, 403 without the header, 409 pause with no run; one run of $rows users by another host shown completed with $rows ids; reset 200 ($((SECONDS - t))s)"
    else
      show_log "$log"
      for f in "$dir/$step.idle" "$dir/$step.done"; do
        if [[ -f $f ]]; then sed 's/^/    /' "$f"; fi
      done
      result FAIL "$app" "$step" "$reason"
    fi
  done
  unset DATABASE_URL PGOPTIONS
done

echo
echo "apps: results ($((SECONDS - started))s)"
printf '  %s\n' "${results[@]}"
exit "$failed"
