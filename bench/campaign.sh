#!/usr/bin/env bash
# Every measurement in docs/benchmarks.md, one after the other. Results land
# in bench/results/<label>.json, all output in bench/results/campaign.log.
#   bash bench/campaign.sh          the third round (issue 18), about 20 minutes
#   bash bench/campaign.sh round2   the second round's runs (issue 6), about 30
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
run() { .venv/bin/python -m bench "$@" 2>&1 | tee -a bench/results/campaign.log; }
domain() { .venv/bin/python -m bench.domain "$@" 2>&1 | tee -a bench/results/campaign.log; }

round3() {
  # Cost runs are taken without admission control: flat out, a process lags
  # by definition, and try_later answers would be counted as errors.
  local noadm=(--env CONSULT_ADMISSION_LAG_MS=0)
  # calls, closed loop, one process: calls/s, server and PostgreSQL CPU per
  # call, statements per call (counted by PostgreSQL's log), generator CPU
  run calls --pairs 50 --reps 2 "${noadm[@]}" --label r3-calls-50
  run calls --pairs 200 --reps 2 "${noadm[@]}" --label r3-calls-200
  # a call at a desk already open (the target of 12 statements)
  run calls --pairs 50 --reps 2 --keep-desk "${noadm[@]}" --label r3-calls-50-keepdesk
  # PostgreSQL's CPU without the statement log that counts them
  run calls --pairs 50 --reps 1 --no-sql-log "${noadm[@]}" --label r3-calls-50-nolog
  # scale-out: a server on each core, sharing Redis and PostgreSQL
  run calls --pairs 50 --reps 2 --processes 2 "${noadm[@]}" --label r3-calls-50-p2
  run calls --pairs 200 --reps 1 --processes 2 "${noadm[@]}" --label r3-calls-200-p2
  # light load (relay latencies), as deployed, and the domain's statements by phase
  run calls --rate 10 --warmup 5 --reps 1 --label r3-light-10
  domain
  # latency under saturation: kept calls while twice the capacity arrives
  capacity=$(.venv/bin/python -c "import json; print(json.load(open('bench/results/r3-calls-50.json'))['median']['calls_per_s'])" 2>/dev/null || echo 22)
  run overload --capacity "$capacity" --reps 2 --label r3-overload-on
  run overload --capacity "$capacity" --reps 1 "${noadm[@]}" --label r3-overload-off
  for bound in 5 10; do
    run overload --capacity "$capacity" --reps 1 --env CONSULT_ADMISSION_LAG_MS=$bound --label r3-overload-on-${bound}ms
  done
  # idle sockets and fan-out: their ramps (64 joins at once, 5,000 queued)
  # lag the loop on purpose, which admission control would turn away
  run idle --reps 1 "${noadm[@]}" --label r3-idle
  run fanout --reps 1 "${noadm[@]}" --label r3-fanout
}

# Each change of the third round on its own: the calls scenario at desks kept
# open, run by the bench of the first commit that counts statements, against
# the app at each commit (git worktrees under /tmp).
changes() {
  local bench_rev=0472640
  for rev in fdf59c9 16e0c9c fd1955a e296108 25384bf; do
    local tree=/tmp/consult-at-$rev
    git worktree add -f --detach "$tree" "$rev" >/dev/null 2>&1
    ln -sfn "$PWD/.venv" "$tree/.venv"
    git -C "$tree" checkout -q "$bench_rev" -- bench tests/live.py 2>/dev/null
    [ "$rev" = e296108 ] || [ "$rev" = 25384bf ] && git -C "$tree" checkout -q "$rev" -- tests/live.py
    (cd "$tree" && .venv/bin/python -m bench calls --pairs 50 --reps 1 --keep-desk \
      --env CONSULT_ADMISSION_LAG_MS=0 --label "r3-change-$rev" \
      --out "$OLDPWD/bench/results/r3-change-$rev.json") 2>&1 | tee -a bench/results/campaign.log
    git worktree remove --force "$tree"
  done
}

round2() {
  # calls, closed loop, as deployed (daphne, core layer, PostgreSQL pool)
  run calls --pairs 50 --reps 2 --label f-calls-50
  run calls --pairs 200 --reps 2 --label f-calls-200
  run calls --pairs 1000 --warmup 20 --duration 30 --timeout 60 --reps 1 --label f-calls-1000
  # calls, open loop
  run calls --rate 10 --warmup 5 --reps 2 --label f-light-10
  run calls --rate 2 --warmup 5 --reps 1 --label f-light-2
  # where the time goes (py-spy on the server), and the database work alone
  run calls --pairs 200 --reps 1 --profile --label f-profile-calls-200
  domain
  # idle sockets and fan-out
  run idle --reps 1 --label f-idle
  run fanout --reps 1 --label f-fanout
  run fanout --lobby 10000 --queued 0 --reps 1 "--server-args=--ping-interval 300 --ping-timeout 30" \
    --label fanout-lobby-10k-ping300
  # the alternatives
  run calls --pairs 200 --reps 1 --server uvicorn --no-deflate --label f-calls-200-uvicorn
  run calls --pairs 200 --reps 1 --layer pubsub --label f-calls-200-pubsub
  run calls --pairs 50 --reps 1 --no-db-pool --label calls-50-nopool
  idle2k() { run idle --reps 1 --levels 2000 --hold 0 "$@"; }
  idle2k --server uvicorn --no-deflate --label f-idle-2000-uvicorn
  idle2k --server uvicorn --label idle-2000-uvicorn-deflate
  idle2k --layer pubsub --label idle-2000-pubsub
}

case "${1:-round3}" in
  round3) round3 ;;
  changes) changes ;;
  round2) round2 ;;
  *) echo "usage: $0 [round3|changes|round2]" >&2; exit 2 ;;
esac
