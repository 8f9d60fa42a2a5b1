"""bench/torch_step.py: the seed's training step in PyTorch, for bench/cpu.sh.

    python3 bench/torch_step.py [--steps 20] [--warmup 3] [--size 128] [--batch 100]

The same models and step as bench/step.lua (scripts/strawberry.lua):
  G  Z-256-512-1024-P: Linear, LeakyReLU(0.2), BatchNorm1d, ..., Linear, Sigmoid
  D  P-1024-512-256-1: Linear, LeakyReLU(0.2), Dropout(0.5), ..., Linear, Sigmoid
BatchNorm1d(momentum=0.2, eps=1e-3) is Keras's BatchNormalization(momentum=0.8)
(PyTorch weighs the new batch by momentum, Keras the running value); Adam(lr
2e-4, betas (0.5, 0.999), eps 1e-7) is Keras's; BCELoss on the sigmoid.
One step: a D update on the real batch (label 1), the fakes made by G in eval
mode under no_grad (Keras's predict), a D update on them (label 0), then the
G step: fresh noise, label 1, through D with requires_grad off (frozen; D
stays in train mode as in Keras), only G's optimizer steps.
Data: one random batch (B, 3, S, S) in [0, 1], flattened, as in step.lua.

Prints the same lines as step.lua: first_step_wall, steps, step_ms,
step_ms_min, losses, peak_rss_kb (ru_maxrss).
"""
import argparse
import os
import resource
import time

import torch
from torch import nn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--latent", type=int, default=100)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--tf32", action="store_true", help="TF32 matrix products on the GPU")
    a = ap.parse_args()
    dev = torch.device(a.device)
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    S, Z, B = a.size, a.latent, a.batch
    P = S * S * 3

    def block(n_in, n_out):
        return [nn.Linear(n_in, n_out), nn.LeakyReLU(0.2),
                nn.BatchNorm1d(n_out, momentum=0.2, eps=1e-3)]

    G = nn.Sequential(*block(Z, 256), *block(256, 512), *block(512, 1024),
                      nn.Linear(1024, P), nn.Sigmoid())
    D = nn.Sequential(nn.Linear(P, 1024), nn.LeakyReLU(0.2), nn.Dropout(0.5),
                      nn.Linear(1024, 512), nn.LeakyReLU(0.2), nn.Dropout(0.5),
                      nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.5),
                      nn.Linear(256, 1), nn.Sigmoid())
    G, D = G.to(dev), D.to(dev)
    bce = nn.BCELoss()
    adam = dict(lr=2e-4, betas=(0.5, 0.999), eps=1e-7)
    g_opt = torch.optim.Adam(G.parameters(), **adam)
    d_opt = torch.optim.Adam(D.parameters(), **adam)
    real_label = torch.ones(B, 1, device=dev)
    fake_label = torch.zeros(B, 1, device=dev)
    real = torch.rand(B, 3, S, S, device=dev).reshape(B, P)

    def d_update(x, label):
        for p in D.parameters():
            p.requires_grad_(True)
        d_opt.zero_grad(set_to_none=False)
        loss = bce(D(x), label)
        loss.backward()
        d_opt.step()
        return loss.item()

    def step():
        loss_real = d_update(real, real_label)
        G.eval()
        with torch.no_grad():
            fake = G(torch.randn(B, Z, device=dev))
        G.train()
        loss_fake = d_update(fake, fake_label)
        for p in D.parameters():          # D frozen for the G step
            p.requires_grad_(False)
        g_opt.zero_grad(set_to_none=False)
        g_loss = bce(D(G(torch.randn(B, Z, device=dev))), real_label)
        g_loss.backward()
        g_opt.step()
        return 0.5 * (loss_real + loss_fake), g_loss.item()

    step()
    print("first_step_wall %.9f" % time.time(), flush=True)
    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        d_loss, g_loss = step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    n = len(times)
    med = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    print("steps %d" % n)
    print("step_ms %.3f" % med)
    print("step_ms_min %.3f" % times[0])
    print("losses %.4f %.4f" % (d_loss, g_loss))
    print("peak_rss_kb %d" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    if dev.type == "cuda":
        print("peak_gpu_mb %.1f" % (torch.cuda.max_memory_allocated() / 2**20))


if __name__ == "__main__":
    main()
