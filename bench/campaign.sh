#!/usr/bin/env bash
# Every measurement in docs/benchmarks.md, one after the other (about 30
# minutes on the 2-core machine). Results land in bench/results/<label>.json,
# all output in bench/results/campaign.log.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
run() { .venv/bin/python -m bench "$@" 2>&1 | tee -a bench/results/campaign.log; }

# calls, closed loop, as deployed (daphne, core layer, PostgreSQL pool)
run calls --pairs 50 --reps 2 --label f-calls-50
run calls --pairs 200 --reps 2 --label f-calls-200
run calls --pairs 1000 --warmup 20 --duration 30 --timeout 60 --reps 1 --label f-calls-1000
# capacity without admission control (the overload runs offer twice this)
run calls --pairs 50 --reps 1 --env CONSULT_ADMISSION_LAG_MS=0 --label f-calls-50-noadmission
# latency under saturation: kept calls while twice the capacity arrives
run overload --capacity 22 --reps 2 --label f-overload-on
run overload --capacity 22 --reps 2 --env CONSULT_ADMISSION_LAG_MS=0 --label f-overload-off
# calls, open loop
run calls --rate 10 --warmup 5 --reps 2 --label f-light-10
run calls --rate 2 --warmup 5 --reps 1 --label f-light-2
# where the time goes (py-spy on the server), and the database work alone
run calls --pairs 200 --reps 1 --profile --label f-profile-calls-200
.venv/bin/python -m bench.domain | tee -a bench/results/campaign.log
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
