"""bench/keras_step.py: the seed's training step in Keras 3 on TensorFlow (the
student's stack), for bench/cpu.sh --with-keras.

    bench/.venv-keras/bin/python bench/keras_step.py [--steps 20] [--warmup 3] ...

The models as in the student's report (scripts/strawberry.lua copies them):
Sequential Dense / LeakyReLU(0.2) / BatchNormalization(momentum=0.8) for G,
Dense / LeakyReLU(0.2) / Dropout(0.5) for D, Adam(2e-4, beta_1=0.5) (Keras's
default epsilon 1e-7), binary cross-entropy.  One step, as the report's loop:
  discriminator.train_on_batch(real, ones)
  fake = generator.predict(z, verbose=0)       # G in inference mode
  discriminator.train_on_batch(fake, zeros)
  combined.train_on_batch(z2, ones)            # D.trainable = False inside
The fakes come from generator.predict (as in the report), not
generator(z, training=False); predict's per-call overhead is part of the
student's step.  Data: one random batch in [0, 1], flattened.

Prints the same lines as bench/step.lua.
"""
import argparse
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--latent", type=int, default=100)
    a = ap.parse_args()
    keras.utils.set_random_seed(1)
    S, Z, B = a.size, a.latent, a.batch
    P = S * S * 3

    def block(n):
        return [layers.Dense(n), layers.LeakyReLU(negative_slope=0.2),
                layers.BatchNormalization(momentum=0.8)]

    G = keras.Sequential([keras.Input((Z,)), *block(256), *block(512), *block(1024),
                          layers.Dense(P, activation="sigmoid")])
    D = keras.Sequential([keras.Input((P,)),
                          layers.Dense(1024), layers.LeakyReLU(negative_slope=0.2),
                          layers.Dropout(0.5),
                          layers.Dense(512), layers.LeakyReLU(negative_slope=0.2),
                          layers.Dropout(0.5),
                          layers.Dense(256), layers.LeakyReLU(negative_slope=0.2),
                          layers.Dropout(0.5),
                          layers.Dense(1, activation="sigmoid")])
    D.compile(loss="binary_crossentropy",
              optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
    D.trainable = False
    z_in = keras.Input((Z,))
    combined = keras.Model(z_in, D(G(z_in)))
    combined.compile(loss="binary_crossentropy",
                     optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))

    rng = np.random.default_rng(1)
    real = rng.random((B, 3, S, S), dtype=np.float32).reshape(B, P)
    ones, zeros = np.ones((B, 1), np.float32), np.zeros((B, 1), np.float32)

    # Keras 3 reads D.trainable when it traces a model's train function (and
    # caches it), not at compile time as Keras 2 did: D must be trainable
    # when D.train_on_batch first runs and frozen when combined's does, or D
    # never learns ("The model does not have any trainable weights").
    def step():
        D.trainable = True
        loss_real = D.train_on_batch(real, ones)
        fake = G.predict(rng.standard_normal((B, Z), dtype=np.float32), verbose=0)
        loss_fake = D.train_on_batch(fake, zeros)
        D.trainable = False
        g_loss = combined.train_on_batch(rng.standard_normal((B, Z), dtype=np.float32), ones)
        return 0.5 * (float(loss_real) + float(loss_fake)), float(g_loss)

    step()
    print("first_step_wall %.9f" % time.time(), flush=True)
    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        d_loss, g_loss = step()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    n = len(times)
    med = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    print("steps %d" % n)
    print("step_ms %.3f" % med)
    print("step_ms_min %.3f" % times[0])
    print("losses %.4f %.4f" % (d_loss, g_loss))
    print("peak_rss_kb %d" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


if __name__ == "__main__":
    main()
