"""Helpers of `just bench-preemption`.

corpus DIR       writes DIR/words.txt: 90 MB of seeded random words, 12 a line
time CMD ARGS..  runs the command 6 times (output discarded), prints the median
                 wall time in seconds of the last 5
"""
import random
import statistics
import subprocess
import sys
import time


def corpus(d):
    r = random.Random(7)
    words = ["".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 9)))
             for _ in range(5000)]
    n = 0
    with open(f"{d}/words.txt", "w") as f:
        while n < 90_000_000:
            line = " ".join(r.choice(words) for _ in range(12)) + "\n"
            f.write(line)
            n += len(line)


def timed(cmd):
    runs = []
    for _ in range(6):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        runs.append(time.perf_counter() - t)
    print(statistics.median(runs[1:]))


if __name__ == "__main__":
    if sys.argv[1] == "corpus":
        corpus(sys.argv[2])
    else:
        timed(sys.argv[2:])
