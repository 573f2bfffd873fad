"""Ensemble evaluation speed: member by member vs all members together.

An 8-member ensemble (default U-Net, 0.48 M parameters each) on a 1024×1024 image at
0.1 Å/px (512² at the model's 0.2 Å/px). Three ways, timed in one run (median of repeats):

(a) loop: for each member, load its weights into one network and run the whole find
    pipeline's prediction (normalise, resample, tile, resample back): what a notebook
    does with N saved models;
(b) sequential: one pass over the tiles, the members run one after the other on each
    batch of tiles (atomlens ``mode="sequential"``);
(c) vectorized: one pass, all members in one batched call (``torch.func.vmap`` over the
    stacked weights, ``mode="vectorized"``).

Then training throughput of the 8 members: (d) one after the other (``Trainer`` per
member) vs (e) together (``train_together``: one vmap'd forward/backward per step), on the
same in-memory batches (8 × 128² px) so that only the network arithmetic is compared
(simulating training images costs the same either way).

On a GPU too when one is present.

    python benchmarks/ensemble_speed.py [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from atomlens.ensemble import Ensemble, Model, ModelConfig
from atomlens.nn import UNet, UNetConfig
from atomlens.simulate import ImagingConditions, simulate_image
from atomlens.train import TrainConfig, Trainer
from atomlens.train.recipe import TrainingSetup
from atomlens.train.together import train_together


class FixedBatches:
    """In-memory training batches (a BatchSource): random images, random soft masks."""

    class_names = ("C", "Si")

    def __init__(self, seed: int, batch: int, side: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.rand(4, batch, 1, side, side, generator=g)
        y = torch.rand(4, batch, 3, side, side, generator=g)
        self.y = y / y.sum(dim=2, keepdim=True)

    def batch(self, step: int, /, *, batch_size: int):
        return self.x[step % 4], self.y[step % 4]

    def describe(self) -> dict:
        return {"kind": "fixed"}


def training_rates(members: int, steps: int, device: str, root: str) -> tuple[float, float]:
    """Member-steps per second, one after the other and together."""
    tmp = tempfile.mkdtemp(dir=root)
    arch = UNetConfig(n_classes=2)
    cfg = ModelConfig(architecture=arch, pixel_size_A=0.2, class_names=("C", "Si"))
    tc = TrainConfig(steps=steps, val_every=steps, batch_size=8, device=device)

    def setups() -> list[TrainingSetup]:
        out = []
        for i in range(members):
            torch.manual_seed(i)
            c = TrainConfig(**{**tc.to_dict(), "seed": i, "augmentation": tc.augmentation})
            out.append(TrainingSetup(Model(UNet(arch), cfg), c, FixedBatches(i, 8, 128), None))
        return out

    s = setups()
    t = time.perf_counter()
    for i, m in enumerate(s):
        Trainer(m.model, m.config, m.data, out=f"{tmp}/seq{device}{i}").fit()
    t_seq = time.perf_counter() - t
    s = setups()
    t = time.perf_counter()
    train_together(
        s, [f"{tmp}/tog{device}{i}" for i in range(members)], checkpoint=f"{tmp}/ck{device}"
    )
    t_tog = time.perf_counter() - t
    return members * steps / t_seq, members * steps / t_tog


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="512² image, 1 repeat")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    ap.add_argument("--members", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    side = 512 if args.quick else 1024
    reps = 1 if args.quick else 3
    im = simulate_image(
        "graphene",
        shape=side,
        pixel_size=0.1,
        rng=0,
        conditions=ImagingConditions(dose_e_per_A2=1e5),
    ).image
    arch = UNetConfig(n_classes=2)
    cfg = ModelConfig(architecture=arch, pixel_size_A=0.2, class_names=("C", "Si"))
    torch.manual_seed(0)
    nets = [UNet(arch).eval() for _ in range(args.members)]
    ens = Ensemble(nets, cfg)
    states = [n.state_dict() for n in nets]
    holder = Model(UNet(arch).eval(), cfg)

    def loop() -> None:
        for s in states:
            holder.network.load_state_dict(s)
            holder.predict(im, pixel_size=0.1)

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(
        f"{args.members} members × {arch.width}-wide U-Net, image {side}² px at 0.1 Å/px "
        f"(model at 0.2 Å/px), {args.threads} CPU thread(s)"
    )
    for dev in devices:
        if dev == "cuda":

            def loop(dev=dev) -> None:
                for s in states:
                    holder.network.load_state_dict(s)
                    holder.predict(im, pixel_size=0.1, device=dev)
                torch.cuda.synchronize()

        t_loop = timed(loop, reps)
        t_seq = timed(
            lambda dev=dev: ens.predict_members(im, pixel_size=0.1, device=dev, mode="sequential"),
            reps,
        )
        t_vec = timed(
            lambda dev=dev: ens.predict_members(im, pixel_size=0.1, device=dev, mode="vectorized"),
            reps,
        )
        print(
            f"  {dev}: (a) loop {t_loop:.2f} s   (b) sequential {t_seq:.2f} s   "
            f"(c) vectorized {t_vec:.2f} s per image"
        )
        print(
            f"  {dev}: loop / sequential = {t_loop / t_seq:.2f}×   "
            f"loop / vectorized = {t_loop / t_vec:.2f}×   "
            f"'auto' uses {'vectorized' if dev == 'cuda' else 'sequential'}"
        )
    steps = 3 if args.quick else 8
    for dev in devices:
        with tempfile.TemporaryDirectory() as tmp:
            training_rates(2, 1, dev, tmp)  # warm-up
            r_seq, r_tog = training_rates(args.members, steps, dev, tmp)
        print(
            f"  {dev} training, {steps} steps of 8 × 128² px per member: "
            f"(d) one after the other {r_seq:.2f} member-steps/s   (e) together "
            f"{r_tog:.2f} member-steps/s   together / one after the other = "
            f"{r_tog / r_seq:.2f}×"
        )


if __name__ == "__main__":
    main()
