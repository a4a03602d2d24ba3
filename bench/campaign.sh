#!/usr/bin/env bash
# Every measurement in docs/benchmarks.md, one after the other (about an hour
# on the 2-core machine). Results land in bench/results/<label>.json, all
# output in bench/results/campaign.log.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
run() { .venv/bin/python -m bench "$@" 2>&1 | tee -a bench/results/campaign.log; }
PARALLEL=--app=bench.parallel_db:application

# idle and fan-out (the slow ones: every join costs more as the queue grows)
run idle --db-pool --reps 1 --label idle-pool
run fanout --db-pool --reps 2 --label fanout-pool
# calls, closed loop: as deployed, with the database pool, and with the pool
# plus database calls on a thread pool (bench/parallel_db.py)
for n in 50 200; do
  run calls --pairs $n --reps 2 --label calls-$n
  run calls --pairs $n --reps 2 --db-pool --label calls-$n-pool
  run calls --pairs $n --reps 2 --db-pool $PARALLEL --label calls-$n-pool-parallel
done
run calls --pairs 1000 --db-pool --warmup 20 --duration 30 --timeout 60 --reps 1 \
  --label calls-1000-pool
# where the time goes (py-spy on the server), as deployed and with the pool
run calls --pairs 50 --reps 1 --profile --label profile-calls-50
run calls --pairs 50 --reps 1 --db-pool --profile --label profile-calls-50-pool
# calls, open loop (light load)
run calls --rate 10 --warmup 5 --db-pool --label light-10-pool
run calls --rate 2 --warmup 5 --reps 2 --db-pool --label light-2-pool
run calls --rate 2 --warmup 5 --reps 2 --db-pool $PARALLEL --label light-2-pool-parallel
# the alternatives: uvicorn with and without permessage-deflate, the pub/sub
# layer, and daphne pinging each socket every 300 s instead of 20 s
run calls --pairs 200 --db-pool --reps 1 --server uvicorn --label calls-200-pool-uvicorn
run calls --pairs 200 --db-pool --reps 1 --server uvicorn --no-deflate \
  --label calls-200-pool-uvicorn-nodeflate
run calls --pairs 200 --db-pool --reps 1 --layer pubsub --label calls-200-pool-pubsub
idle2k() { run idle --db-pool --reps 1 --levels 2000 --hold 0 "$@"; }
idle2k --label idle-2000-pool
idle2k --server uvicorn --label idle-2000-pool-uvicorn
idle2k --server uvicorn --no-deflate --label idle-2000-pool-uvicorn-nodeflate
idle2k --layer pubsub --label idle-2000-pool-pubsub
idle2k "--server-args=--ping-interval 300" --label idle-2000-pool-ping300
