-- scripts/strawberry.lua: the seed program, exactly -- a fully-connected GAN
-- on strawberry photos, as the student's Keras/TensorFlow report built it.
--
--   gan scripts/strawberry.lua [--data DIR] [--size 128] [--epochs 500] ...
--   gan scripts/strawberry.lua --resume out/strawberry    (continue a run)
--   gan scripts/strawberry.lua --watch                    (edit the loop live)
--   gan scripts/strawberry.lua --help
--
-- Edit freely: the loop, the model and the options below are plain Lua.
-- The file has three parts, in this order:
--   1. the loop (train.loop): the D step, the G step and the schedule.  With
--      --watch, when this file changes, the run reads it again up to the end
--      of this part, at the next epoch, and swaps the new functions in; the
--      models, optimizers and data stay.  So keep the loop first and nothing
--      costly above it.
--   2. the options (train.start): parsed, or taken from the checkpoint on
--      --resume.  The run folder is made later, by run:fit, once the data
--      and the models are good.
--   3. the data and the models, then run:fit, which trains and writes the run
--      folder: OUT/config.lua, OUT/loss.csv, OUT/samples/epoch_NNNN.png,
--      OUT/checkpoints/last.ckpt (and epoch_NNNN.ckpt with --save-every),
--      OUT/report.html.  See gan/train.lua.
local gan = require "gan"
local nn, train = gan.nn, gan.train

---------------------------------------------------------------------------
-- The loop.  r holds what run:fit was given at the bottom of the file.
---------------------------------------------------------------------------
train.loop(function(r)
  local G, D, opts = r.models.G, r.models.D, r.opts
  local g_opt, d_opt = r.optims.G, r.optims.D
  local bce, z, real_label, fake_label = r.bce, r.z, r.real_label, r.fake_label
  -- What a step reports, kept on the device: run:fit reads these 1-element
  -- tensors without waiting for the GPU.  (Plain numbers work too --
  -- bce:forward(p, label) and p:mean() return them -- but each one waits.)
  local d_loss, g_loss, d_real, d_fake = gan.empty(1), gan.empty(1), gan.empty(1), gan.empty(1)

  -- One D update on one batch: Keras's discriminator.train_on_batch(x, y).
  -- Writes D's mean output into 'mean'; returns the loss (bce's tensor).
  local function d_update(x, label, mean)
    D:zero_grad()
    local p = D:forward(x)                     -- (B, 1)
    local loss = bce:forward(p, label, false)  -- the loss, left on the device
    D:backward(x, bce:backward(), false)       -- no gradient w.r.t. the images
    d_opt:step()
    p:mean(mean)
    return loss
  end

  -- The D step: a real batch (label 1), then a fresh fake batch (label 0).
  -- D's loss is the mean of the two, as Keras logs it.
  local function d_step(real)
    d_loss:copy(d_update(real, real_label, d_real))
    z:normal()
    if opts.keras_predict then G:evaluate() end
    local fake = G:forward(z)                  -- (B, S*S*3)
    G:train()
    d_loss:add(d_update(fake, fake_label, d_fake), 0.5, 0.5)  -- 0.5 fake + 0.5 real
    return d_loss, d_real, d_fake
  end

  -- The G step: new noise, label 1, through D frozen.  D is asked only for the
  -- gradient of its input (backward_input); only G's optimizer steps.
  local function g_step()
    G:zero_grad()
    z:normal()
    local fake = G:forward(z)
    local p = D:forward(fake)                  -- D still in training mode, as in Keras
    bce:forward(p, real_label, g_loss)
    G:backward(z, D:backward_input(fake, bce:backward()), false)
    g_opt:step()
    return g_loss
  end

  -- The schedule: d_steps D steps per G step.  Returns what the run logs.
  local function step(real)
    for _ = 1, opts.d_steps do d_step(real) end
    return d_loss, g_step(), d_real, d_fake
  end

  return {d_step = d_step, g_step = g_step, step = step}
end)

---------------------------------------------------------------------------
-- Options (the seed's values are the defaults)
---------------------------------------------------------------------------
local script = arg and arg[0] or "scripts/strawberry.lua"

local spec = {
  {"data", train.default_data(script), "folder of training images (searched recursively)", meta = "DIR"},
  {"size", 128, "images are resized to SIZE x SIZE", min = 4, max = 1024},
  {"epochs", 500, "passes over the data", min = 1},
  {"batch", 100, "images per batch", min = 1},
  {"latent", 100, "size of the noise vector", min = 1},
  {"lr", 2e-4, "Adam learning rate, both models", min = 0},
  {"beta1", 0.5, "Adam beta1, both models", min = 0, max = 0.999},
  {"sample_every", 10, "write a sample grid every N epochs", min = 1},
  {"samples", 10, "images per sample grid", min = 1, max = 1024},
  {"out", "out/strawberry", "run folder", meta = "DIR"},
  {"seed", 1, "random seed (same seed, same run on the cpu)", min = 0},
  {"device", "auto", "cpu, cuda or auto", choices = {"cpu", "cuda", "auto"}},
  {"d_steps", 1, "D steps per G step", min = 1},
  {"keras_predict", true, "make D's fakes with G in evaluation mode, as Keras's predict does"},
}
local run = train.start(spec, arg, script,
  "The seed's dense GAN: G 100-256-512-1024-S*S*3, D S*S*3-1024-512-256-1.")
local opts = run.opts                        -- also --resume, --save-every, --watch
if opts.data == "" then
  run:fail(("no training images: put photos in %s or pass --data DIR"):format(
    train.join(train.project_root(script), "data/strawberries/")), 2)
end

local dev = gan.device()                     -- train.start seeded and selected it
local S, Z, B = opts.size, opts.latent, opts.batch
local pixels = S * S * 3

---------------------------------------------------------------------------
-- Data: every image, resized to S x S, in [0, 1] (the seed's scaling)
---------------------------------------------------------------------------
local ok, data = pcall(gan.images.load, opts.data, {size = S})  -- (N, 3, S, S) on dev
if not ok then run:fail(data) end
local loader = gan.data.loader(data, B)
B = loader.batch                                        -- at most N
io.stderr:write(("data: %s of %dx%d from %s, %s of %d per epoch, on %s\n")
  :format(train.count(data:size(1), "image"), S, S, opts.data,
          train.count(loader.steps, "batch", "batches"), B,
          dev .. (dev == "cuda" and gan.precision() == "tf32" and " in tf32" or "")))

---------------------------------------------------------------------------
-- The models, as in the report
---------------------------------------------------------------------------
local function block(n_in, n_out)            -- Dense + LeakyReLU(0.2) + BatchNorm(0.8)
  return nn.Sequential(nn.Linear(n_in, n_out), nn.LeakyReLU(0.2),
                       nn.BatchNorm(n_out, {momentum = 0.8}))
end

-- G, D, data and opts are globals on purpose: `gan -i scripts/strawberry.lua`
-- ends in a REPL where they can be explored.
_G.opts, _G.data = opts, data

G = nn.Sequential(                           -- z: (B, Z)
  block(Z, 256),                             -- (B, 256)
  block(256, 512),                           -- (B, 512)
  block(512, 1024),                          -- (B, 1024)
  nn.Linear(1024, pixels), nn.Sigmoid())     -- (B, S*S*3) in [0, 1]

D = nn.Sequential(                           -- x: (B, S*S*3)
  nn.Linear(pixels, 1024), nn.LeakyReLU(0.2), nn.Dropout(0.5),  -- (B, 1024)
  nn.Linear(1024, 512), nn.LeakyReLU(0.2), nn.Dropout(0.5),     -- (B, 512)
  nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.5),      -- (B, 256)
  nn.Linear(256, 1), nn.Sigmoid())                              -- (B, 1): P(real)

local bce = nn.BCE()
local g_opt = gan.optim.Adam(G:parameters(), {lr = opts.lr, beta1 = opts.beta1})
local d_opt = gan.optim.Adam(D:parameters(), {lr = opts.lr, beta1 = opts.beta1})

local real_label = gan.ones(B, 1)
local fake_label = gan.zeros(B, 1)
local z = gan.empty(B, Z)                    -- noise, redrawn in place
local z_fixed = gan.randn(opts.samples, Z)   -- the same noise for every grid (on
                                             -- --resume, the checkpoint's)

---------------------------------------------------------------------------
-- The run: epochs of the loop above, samples, checkpoints, the report
---------------------------------------------------------------------------
run:fit{models = {G = G, D = D}, optims = {G = g_opt, D = d_opt},
        loader = loader, noise = z_fixed, range = "0,1",
        bce = bce, z = z, real_label = real_label, fake_label = fake_label}
