-- scripts/strawberry_dcgan.lua: a DCGAN (Radford, Metz and Chintala, ICLR
-- 2016) on the strawberry photos: convolutions where the seed had dense
-- layers, to capture the shape and the green calyx.
--
--   gan scripts/strawberry_dcgan.lua [--size 64] [--width 64] [--epochs 300] ...
--   gan scripts/strawberry_dcgan.lua --resume out/strawberry_dcgan  (continue a run)
--   gan scripts/strawberry_dcgan.lua --watch                         (edit the loop live)
--   gan scripts/strawberry_dcgan.lua --help
--
-- Laid out as scripts/strawberry.lua (see its header and gan/train.lua):
-- the loop first (train.loop), then the options (train.start), then the
-- data, the models and run:fit, which writes OUT/loss.csv,
-- OUT/samples/epoch_NNNN.png, OUT/checkpoints/last.ckpt (for
-- scripts/evaluate.lua and scripts/sample.lua) and OUT/report.html.
local gan = require "gan"
local nn, train = gan.nn, gan.train

---------------------------------------------------------------------------
-- The loop.  r holds what run:fit was given at the bottom of the file.
---------------------------------------------------------------------------
train.loop(function(r)
  local G, D, opts = r.models.G, r.models.D, r.opts
  local g_opt, d_opt = r.optims.G, r.optims.D
  local bce, prob, z = r.bce, r.prob, r.z
  local real_label, fake_label = r.real_label, r.fake_label
  local aug_real, aug_fake = r.aug_real, r.aug_fake
  -- What a step reports, kept on the device: run:fit reads these 1-element
  -- tensors without waiting for the GPU.  (Plain numbers work too --
  -- bce:forward(p, label) and p:mean() return them -- but each one waits.)
  local d_loss, g_loss, d_real, d_fake = gan.empty(1), gan.empty(1), gan.empty(1), gan.empty(1)

  -- The D step: the gradients of a real batch (label 1) and a fake batch
  -- (label 0) summed, then one Adam update, as the paper's PyTorch example.
  -- Leaves D's loss (real + fake) and its mean P(real) on each batch in
  -- d_loss, d_real and d_fake; returns the fakes.
  local function d_step(real)
    D:zero_grad()
    if opts.flip then gan.augment.flip(real) end         -- in place, in the loader's buffer
    local xr = aug_real:forward(real)
    local pr = D:forward(xr)                             -- (B, 1) logits
    bce:forward(pr, real_label, d_loss)
    prob:forward(pr):mean(d_real)
    D:backward(xr, bce:backward(), false)                -- no gradient w.r.t. the images

    z:normal()
    local fake = G:forward(z)                            -- (B, 3, S, S)
    local xf = aug_fake:forward(fake)
    local pf = D:forward(xf)
    d_loss:add(bce:forward(pf, fake_label, false))       -- real + fake
    prob:forward(pf):mean(d_fake)
    D:backward(xf, bce:backward(), false)
    d_opt:step()
    return fake
  end

  -- The G step: the same fakes through the updated D (recomputed), label 1
  -- (the non-saturating loss).  D gives only its input gradient; the
  -- augmentation passes it back to G, whose buffers still hold that forward.
  local function g_step(fake)
    G:zero_grad()
    local xf = aug_fake:forward(fake)                    -- new shifts
    local p = D:forward(xf)
    bce:forward(p, real_label, g_loss)
    local g = aug_fake:backward(fake, D:backward_input(xf, bce:backward()))
    G:backward(z, g, false)
    g_opt:step()
    return g_loss
  end

  -- The schedule: d_steps D steps per G step.  Returns what the run logs.
  local function step(real)
    local fake
    for _ = 1, opts.d_steps do fake = d_step(real) end
    return d_loss, g_step(fake), d_real, d_fake
  end

  return {d_step = d_step, g_step = g_step, step = step}
end)

---------------------------------------------------------------------------
-- Options (the paper's values are the defaults)
---------------------------------------------------------------------------
local script = arg and arg[0] or "scripts/strawberry_dcgan.lua"

local spec = {
  {"data", train.default_data(script), "folder of training images (searched recursively)", meta = "DIR"},
  {"size", 64, "images are resized to SIZE x SIZE", choices = {16, 32, 64, 128}},
  {"width", 64, "base channel count: G's last and D's first block (the paper: 64)", min = 1},
  {"epochs", 300, "passes over the data", min = 1},
  {"batch", 64, "images per batch", min = 2},
  {"latent", 100, "size of the noise vector", min = 1},
  {"lr", 2e-4, "Adam learning rate, both models", min = 0},
  {"beta1", 0.5, "Adam beta1, both models", min = 0, max = 0.999},
  {"flip", true, "random horizontal flips of the real images"},
  {"translate", 0.0, "DiffAugment translation of real and fake images, as a fraction "
                     .. "of the size (e.g. 0.125)", min = 0, max = 0.5},
  {"sample_every", 10, "write a sample grid every N epochs", min = 1},
  {"samples", 64, "images per sample grid", min = 1, max = 1024},
  {"out", "out/strawberry_dcgan", "run folder", meta = "DIR"},
  {"seed", 1, "random seed (same seed, same run on the cpu)", min = 0},
  {"device", "auto", "cpu, cuda or auto", choices = {"cpu", "cuda", "auto"}},
  {"d_steps", 1, "D steps per G step", min = 1},
}
local run = train.start(spec, arg, script,
  "A DCGAN: G latent -> ConvTranspose2d/BatchNorm2d/ReLU blocks -> tanh; D Conv2d/LeakyReLU blocks -> a logit.")
local opts = run.opts                        -- also --resume, --save-every, --watch
if opts.data == "" then
  run:fail(("no training images: put photos in %s or pass --data DIR"):format(
    train.join(train.project_root(script), "data/strawberries/")), 2)
end

local dev = gan.device()                     -- train.start seeded and selected it
local S, Z, B, W = opts.size, opts.latent, opts.batch, opts.width

---------------------------------------------------------------------------
-- Data: every image, resized to S x S, in [-1, 1] (tanh's range)
---------------------------------------------------------------------------
local ok, data = pcall(gan.images.load, opts.data, {size = S, range = "-1,1"})
if not ok then run:fail(data) end
local loader = gan.data.loader(data, B)
B = loader.batch
io.stderr:write(("data: %s of %dx%d from %s, %s of %d per epoch, on %s\n")
  :format(train.count(data:size(1), "image"), S, S, opts.data,
          train.count(loader.steps, "batch", "batches"), B,
          dev .. (dev == "cuda" and gan.precision() == "tf32" and " in tf32" or "")))

---------------------------------------------------------------------------
-- The models (the paper's figure 1, and its PyTorch example): every block
-- doubles (G) or halves (D) the side with 4x4 kernels, stride 2, padding 1;
-- the side goes 4 -> 8 -> ... -> S, so S = 64 has 4 blocks in each.
---------------------------------------------------------------------------
local blocks = math.floor(math.log(S, 2) + 0.5) - 2      -- 2 at 16, 4 at 64, 5 at 128

local function up(n_in, n_out)                           -- (B, n_in, s, s) -> (B, n_out, 2s, 2s)
  return nn.Sequential(nn.ConvTranspose2d(n_in, n_out, 4, {stride = 2, padding = 1, bias = false}),
                       nn.BatchNorm2d(n_out), nn.ReLU())
end

local function down(n_in, n_out, bn)                     -- (B, n_in, s, s) -> (B, n_out, s/2, s/2)
  local m = nn.Sequential(nn.Conv2d(n_in, n_out, 4, {stride = 2, padding = 1, bias = not bn}))
  if bn then m:add(nn.BatchNorm2d(n_out)) end
  return m:add(nn.LeakyReLU(0.2))
end

-- G, D, data and opts are globals on purpose: `gan -i scripts/strawberry_dcgan.lua`
-- ends in a REPL where they can be explored.
_G.opts, _G.data = opts, data

local top = W << (blocks - 1)                            -- channels at 4x4: 8W at 64
G = nn.Sequential(nn.Reshape(Z, 1, 1),                   -- z: (B, Z) -> (B, Z, 1, 1)
  nn.Sequential(nn.ConvTranspose2d(Z, top, 4, {bias = false}),  -- (B, top, 4, 4)
                nn.BatchNorm2d(top), nn.ReLU()))
local c = top
for _ = 1, blocks - 1 do
  G:add(up(c, c // 2))                                   -- (B, c/2, 2s, 2s)
  c = c // 2
end
G:add(nn.ConvTranspose2d(c, 3, 4, {stride = 2, padding = 1, bias = false}))  -- (B, 3, S, S)
G:add(nn.Tanh())                                         -- in [-1, 1]

D = nn.Sequential(down(3, W, false))                     -- (B, W, S/2, S/2), no BatchNorm
c = W
for _ = 1, blocks - 1 do
  D:add(down(c, c * 2, true))                            -- (B, 2c, s/2, s/2)
  c = c * 2
end
D:add(nn.Conv2d(c, 1, 4, {bias = false}))                -- (B, 1, 1, 1)
D:add(nn.Flatten())                                      -- (B, 1): a logit

local bce = nn.BCEWithLogits()
local prob = nn.Sigmoid()                                -- D's logits as P(real), for the log
-- Adam as in the paper's (and PyTorch's) Algorithm 1, not Keras's form
-- (gan/optim.lua): the DCGAN follows the PyTorch example, not the seed
local g_opt = gan.optim.Adam(G:parameters(), {lr = opts.lr, beta1 = opts.beta1, form = "paper"})
local d_opt = gan.optim.Adam(D:parameters(), {lr = opts.lr, beta1 = opts.beta1, form = "paper"})

-- DiffAugment's translation, one module per stream so that the G step's
-- backward sees the shifts of its own forward
local aug_real = gan.augment.Augment{translate = opts.translate}
local aug_fake = gan.augment.Augment{translate = opts.translate}

local real_label = gan.ones(B, 1)
local fake_label = gan.zeros(B, 1)
local z = gan.empty(B, Z)                                -- noise, redrawn in place
local z_fixed = gan.randn(opts.samples, Z)               -- the same noise for every grid (on
                                                         -- --resume, the checkpoint's)

---------------------------------------------------------------------------
-- The run: epochs of the loop above, samples, checkpoints, the report
---------------------------------------------------------------------------
run:fit{models = {G = G, D = D}, optims = {G = g_opt, D = d_opt},
        loader = loader, noise = z_fixed, range = "-1,1",
        bce = bce, prob = prob, z = z, real_label = real_label, fake_label = fake_label,
        aug_real = aug_real, aug_fake = aug_fake}

