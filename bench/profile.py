"""py-spy profiles of the server: record one run, and read the hot functions back.

`python -m bench.profile FILE [N]` prints the N functions with the most
samples on the stack (inclusive) and at the top of it (self), from py-spy's
raw (collapsed) output. Only samples holding the GIL are recorded, so the
shares are of the server's Python CPU time.
"""

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from .stack import VENV


def record(pid: int, path: Path) -> subprocess.Popen:
    """Start sampling `pid`; `stop()` it to write the raw profile to `path`."""
    return subprocess.Popen(
        [
            str(VENV / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--gil",
            "--nonblocking",
            "--rate",
            "200",
            "--output",
            str(path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(spy: subprocess.Popen) -> None:
    spy.send_signal(signal.SIGINT)
    spy.wait(30)


def hot(path: Path, top: int = 25) -> str:
    inclusive, selfish, total = Counter(), Counter(), 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames, n = stack.split(";"), int(count)
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        selfish[frames[-1]] += n
    lines = [f"{total} samples"]
    for title, counter in (("inclusive", inclusive), ("self", selfish)):
        lines.append(f"-- {title}")
        lines += [
            f"{100 * n / total:5.1f}%  {frame}" for frame, n in counter.most_common(top)
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(hot(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 25))
