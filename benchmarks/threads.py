"""How many torch threads per worker on a small CPU?  (Not a test: figures go in
docs/PERFORMANCE.md with the machine named.)

Measures training steps per second of one typical genome (32 px, batch 32) with 1 and
2 torch threads, alone and with a second process training at the same time, and the
throughput of 1 vs 2 worker processes.

    python benchmarks/threads.py [--steps 40]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import time


def _train(threads: int, steps: int, queue) -> None:
    import torch

    torch.set_num_threads(threads)
    from evoart.genome import Block, DiscriminatorGenes, GeneratorGenes, Genome, TrainingGenes
    from evoart.train import train_briefly

    genome = Genome(
        generator=GeneratorGenes(latent=64, stem_channels=128, blocks=(
            Block(64, "transposed"), Block(32, "transposed"), Block(16, "transposed"))),
        discriminator=DiscriminatorGenes("dcgan", 32, "spectral"),
        training=TrainingGenes(batch_size=32),
    )
    data = torch.rand(512, 3, 32, 32) * 2 - 1
    train_briefly(genome, data, steps=3, seed=0)  # warm-up
    t0 = time.perf_counter()
    train_briefly(genome, data, steps=steps, seed=0)
    queue.put(steps / (time.perf_counter() - t0))


def measure(threads: int, processes: int, steps: int) -> list[float]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_train, args=(threads, steps, q)) for _ in range(processes)]
    for p in procs:
        p.start()
    rates = [q.get() for _ in procs]
    for p in procs:
        p.join()
    return rates


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}")
    print("| threads per process | processes at once | steps/s each | steps/s in all |")
    print("|---|---|---|---|")
    for threads, processes in ((1, 1), (2, 1), (1, 2), (2, 2)):
        rates = measure(threads, processes, args.steps)
        print(f"| {threads} | {processes} | {', '.join(f'{r:.1f}' for r in rates)} | {sum(rates):.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
