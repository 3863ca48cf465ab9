"""The ``none`` baseline of a cropping study: where its centre crop happens, side by side.

CurlSAC with ``aux={"preset": "none", "augment": ["crop"], "crop_size": 84, "rl_augment": "none"}``
(what ``curl-rl compare`` builds for ``none`` beside cropping arms) on 100x100x9 frames, CURL's
update and encoder, batch 128. Sides, alternating in each repetition, in one process:

- ``extractor``: the RL batch goes to the encoders whole; ``CenterCropExtractor`` crops each pass
  after SB3 has normalised the whole frame (the behaviour before 2026-12-01);
- ``batch``: ``_aux_augment_rl`` centre-crops the uint8 batch once (the library now);
- ``aug``: the ``aug`` arm (a random crop of the uint8 batch), for reference.

Both ``none`` sides compute the same numbers (``tests/test_algorithms.py``).

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 python -m benchmarks.centre_crop --bf16
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

from benchmarks.common import SyntheticPixelEnv, machine_description, stamp
from curl_rl import CurlSAC
from curl_rl.algos.performance import PerformanceConfig, resolve_auto
from curl_rl.algos.sac import CURL_PAPER_SAC

SIDES = ("extractor", "batch", "aug")


def _model(side: str, batch: int, bf16: bool) -> Any:
    aux: Any = {"preset": "aug", "augment": ["crop"], "crop_size": 84}
    if side != "aug":
        aux = {"preset": "none", "augment": ["crop"], "crop_size": 84, "rl_augment": "none"}
    kwargs = {**CURL_PAPER_SAC, "batch_size": batch, "learning_starts": batch, "buffer_size": 1000}
    model = CurlSAC(
        "CnnPolicy",
        SyntheticPixelEnv(100, 9, continuous=True),
        aux=aux,
        seed=0,
        device="cpu",
        # resolved here, as build_model does: left "auto", aux="none" would turn channels_last off
        performance=resolve_auto(PerformanceConfig(bf16=bf16), "cpu"),
        **kwargs,
    )
    if side == "extractor":
        model._aux_augment_rl = lambda obs: obs  # the extractor crops, as before
    model.learn(batch)
    model.train(gradient_steps=2, batch_size=batch)  # warm-up
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--updates", type=int, default=8)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on the encoders (native bf16 only)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = {side: _model(side, args.batch, args.bf16) for side in SIDES}
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    for rep in range(args.reps):
        for side in SIDES if rep % 2 == 0 else reversed(SIDES):
            start = time.perf_counter()
            models[side].train(gradient_steps=args.updates, batch_size=args.batch)
            times[side].append((time.perf_counter() - start) / args.updates)
    print(f"# none arm's centre crop, CurlSAC batch {args.batch}, 100->84, bf16={args.bf16}; {stamp()}")
    print(f"# {machine_description()}, {args.threads} thread(s); {args.reps} alternating reps, {args.updates} updates")
    base = statistics.median(times["extractor"])
    print("| side | update (s) | speed-up over extractor |\n|---|---:|---:|")
    for side in SIDES:
        median = statistics.median(times[side])
        print(f"| {side} | {median:.3f} | {base / median:.2f}x |")


if __name__ == "__main__":
    main()
