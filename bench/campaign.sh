#!/usr/bin/env bash
# Every measurement in docs/benchmarks.md, one after the other (about 40
# minutes on the 2-core machine). Results land in bench/results/<label>.json,
# all output in bench/results/campaign.log.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
run() { .venv/bin/python -m bench "$@" 2>&1 | tee -a bench/results/campaign.log; }

# calls, closed loop, as deployed (daphne, core layer, PostgreSQL pool)
run calls --pairs 50 --reps 2 --label calls-50
run calls --pairs 200 --reps 2 --label calls-200
run calls --pairs 1000 --warmup 20 --duration 30 --timeout 60 --reps 1 --label calls-1000
# calls, open loop
for rate in 2 5 10; do
  run calls --rate $rate --warmup 5 --reps 2 --label light-$rate
done
# where the time goes (py-spy on the server)
run calls --pairs 200 --reps 1 --profile --label profile-calls-200
run calls --rate 5 --warmup 5 --reps 1 --profile --label profile-light-5
# idle sockets and fan-out
run idle --reps 1 --label idle
run fanout --reps 1 --label fanout
# the alternatives
run calls --pairs 50 --reps 1 --no-db-pool --label calls-50-nopool
run calls --pairs 200 --reps 1 --server uvicorn --no-deflate --label calls-200-uvicorn
run calls --pairs 200 --reps 1 --layer pubsub --label calls-200-pubsub
idle2k() { run idle --reps 1 --levels 2000 --hold 0 "$@"; }
idle2k --label idle-2000
idle2k --server uvicorn --no-deflate --label idle-2000-uvicorn-nodeflate
idle2k --server uvicorn --label idle-2000-uvicorn-deflate
idle2k --layer pubsub --label idle-2000-pubsub
