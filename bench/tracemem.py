"""Where a server's memory goes: `--app bench.tracemem:application`.

The application as deployed, with tracemalloc on from the start; a snapshot is
written to bench/results/tracemem-<seconds>.bin at each of TRACEMEM_AT
(seconds since start, default "20,80"). `python -m bench.tracemem A B` prints
what grew from snapshot A to B, by the line that allocated it.
"""

import gc
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _snapshots(times: list[float]) -> None:
    started = time.monotonic()
    for at in times:
        time.sleep(max(0.0, started + at - time.monotonic()))
        gc.collect()
        tracemalloc.take_snapshot().dump(str(RESULTS / f"tracemem-{at:g}.bin"))


def grown(before: str, after: str, top: int = 30) -> str:
    old, new = (tracemalloc.Snapshot.load(p) for p in (before, after))
    stats = new.compare_to(old, "lineno")
    total = sum(s.size_diff for s in stats)
    lines = [f"grew by {total / 1e6:.1f} MB"]
    for stat in stats[:top]:
        frame = stat.traceback[0]
        lines.append(
            f"{stat.size_diff / 1e3:10.0f} kB {stat.count_diff:8d} blocks"
            f"  {frame.filename.split('site-packages/')[-1]}:{frame.lineno}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(grown(sys.argv[1], sys.argv[2]))
else:
    tracemalloc.start(16)  # frames kept per allocation: who made it
    from config.asgi import application  # noqa: F401

    RESULTS.mkdir(exist_ok=True)
    at = [float(t) for t in os.environ.get("TRACEMEM_AT", "20,80").split(",")]
    threading.Thread(target=_snapshots, args=(at,), daemon=True).start()
