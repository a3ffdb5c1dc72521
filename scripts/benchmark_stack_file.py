"""How long reading a hostile stack file takes before it is refused (target: under one second each), and
reading the largest stack file allowed.

Run: .venv/bin/python scripts/benchmark_stack_file.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from presencesync.errors import PresenceSyncError  # noqa: E402
from presencesync.stack_file import MAX_STACK_FILE_BYTES, read_stack_config  # noqa: E402

RUNS = 10


def alias_bomb(levels: int) -> str:
    lines = ["config:", '  presencesync:a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        lines.append(f"  presencesync:a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def largest_allowed() -> str:
    line = '  presencesync:k{:06d}: "a value of a realistic length, nothing more"\n'
    text, i = "config:\n", 0
    while len(text) + len(line) + 10 < MAX_STACK_FILE_BYTES:
        text, i = text + line.format(i), i + 1
    return text


def timed(what: str, read: Callable[[], object]) -> None:
    seconds, outcome = [], ""
    for _ in range(RUNS):
        started = time.perf_counter()
        try:
            read()
            outcome = "read"
        except PresenceSyncError as error:
            outcome = f"refused: {str(error).split(': ', 1)[1][:60]}"
        seconds.append(time.perf_counter() - started)
    print(f"{what}: median {statistics.median(seconds) * 1000:.1f} ms, slowest {max(seconds) * 1000:.1f} ms "
          f"({outcome})")


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        project = Path(directory)
        for levels in (9, 30):
            bomb = project / f"Pulumi.bomb{levels}.yaml"
            bomb.write_text(alias_bomb(levels))
            timed(f"alias bomb, {levels} levels ({len(bomb.read_bytes())} bytes)", lambda b=bomb: read_stack_config(b))
        zero = project / "Pulumi.zero.yaml"
        zero.symlink_to("/dev/zero")
        timed("link to /dev/zero", lambda: read_stack_config(zero))
        big = project / "Pulumi.big.yaml"
        big.write_text(largest_allowed())
        timed(f"largest allowed ({len(big.read_bytes()) // 1024} KiB, plain values)", lambda: read_stack_config(big))


if __name__ == "__main__":
    main()
