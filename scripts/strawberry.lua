-- scripts/strawberry.lua: the seed program, exactly -- a fully-connected GAN
-- on strawberry photos, as the student's Keras/TensorFlow report built it.
--
--   gan scripts/strawberry.lua [--data DIR] [--size 128] [--epochs 500] ...
--   gan scripts/strawberry.lua --help
--
-- Edit freely: the model, the D step, the G step and the schedule below are
-- plain Lua, read at every start.  Writes OUT/samples/epoch_NNNN.png (a grid
-- from one fixed noise batch, before training, every --sample-every epochs
-- and at the end) and OUT/loss.csv (one row per epoch).
local gan = require "gan"
local nn, train = gan.nn, gan.train

---------------------------------------------------------------------------
-- Options (the seed's values are the defaults)
---------------------------------------------------------------------------
local script = arg and arg[0] or "scripts/strawberry.lua"
local root = train.script_dir(train.script_dir(script))
local function default_data()
  for _, d in ipairs{root .. "/data/strawberries", root .. "/../shared/data/strawberries"} do
    if train.exists(d) then return d end
  end
  return ""
end

local spec = {
  {"data", default_data(), "folder of training images (searched recursively)", meta = "DIR"},
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
local opts = gan.cli.parse(spec, arg or {}, "scripts/strawberry.lua",
  "The seed's dense GAN: G 100-256-512-1024-S*S*3, D S*S*3-1024-512-256-1.")
if opts.data == "" then
  io.stderr:write("strawberry.lua: no training images: put photos in ", root,
                  "/data/strawberries/ or pass --data DIR\n")
  os.exit(2)
end

gan.seed(opts.seed)
gan.device(opts.device)
local dev = gan.device()
local S, Z, B = opts.size, opts.latent, opts.batch
local pixels = S * S * 3

---------------------------------------------------------------------------
-- Data: every image, resized to S x S, in [0, 1] (the seed's scaling)
---------------------------------------------------------------------------
local ok, data = pcall(gan.images.load, opts.data, {size = S})  -- (N, 3, S, S) on dev
if not ok then
  io.stderr:write("strawberry.lua: ", data:gsub("^[^:]*:%d+: ", ""), "\n")
  os.exit(1)
end
local loader = gan.data.loader(data, B)
B = loader.batch                                        -- at most N
io.stderr:write(("data: %d images of %dx%d from %s, %d batches of %d per epoch, on %s\n")
  :format(data:size(1), S, S, opts.data, loader.steps, B, dev))

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
local z_fixed = gan.randn(opts.samples, Z)   -- the same noise for every grid

---------------------------------------------------------------------------
-- One D update on one batch: Keras's discriminator.train_on_batch(x, y)
---------------------------------------------------------------------------
local function d_update(x, label)
  D:zero_grad()
  local p = D:forward(x)                     -- (B, 1)
  local loss = bce:forward(p, label)
  D:backward(x, bce:backward(), false)       -- no gradient w.r.t. the images
  d_opt:step()
  return loss, p:mean()
end

-- The D step: a real batch (label 1), then a fresh fake batch (label 0).
local function d_step(real)
  local loss_real, d_real = d_update(real, real_label)
  z:normal()
  if opts.keras_predict then G:evaluate() end
  local fake = G:forward(z)                  -- (B, S*S*3)
  G:train()
  local loss_fake, d_fake = d_update(fake, fake_label)
  return 0.5 * (loss_real + loss_fake), d_real, d_fake
end

-- The G step: new noise, label 1, through D frozen.  D is asked only for the
-- gradient of its input (backward_input); only G's optimizer steps.
local function g_step()
  G:zero_grad()
  z:normal()
  local fake = G:forward(z)
  local p = D:forward(fake)                  -- D still in training mode, as in Keras
  local loss = bce:forward(p, real_label)
  G:backward(z, D:backward_input(fake, bce:backward()), false)
  g_opt:step()
  return loss
end

-- The schedule: d_steps D steps per G step.
local function step(real)
  local d_loss, d_real, d_fake
  for _ = 1, opts.d_steps do d_loss, d_real, d_fake = d_step(real) end
  return d_loss, g_step(), d_real, d_fake
end

---------------------------------------------------------------------------
-- The run
---------------------------------------------------------------------------
train.mkdir(opts.out .. "/samples")
local log = train.csv(opts.out .. "/loss.csv",
                      {"epoch", "step", "d_loss", "g_loss", "d_real", "d_fake"})
local cols = train.grid_cols(opts.samples)

local function save_samples(epoch)
  G:evaluate()
  local path = ("%s/samples/epoch_%04d.png"):format(opts.out, epoch)
  gan.images.save_grid(G:forward(z_fixed), path, {cols = cols})
  G:train()
end

if gan.defer_interrupts then gan.defer_interrupts(true) end  -- Ctrl-C stops between steps
save_samples(0)
local steps, t0 = 0, gan.C.clock()
for epoch = 1, opts.epochs do
  local bar = gan.progress.bar{label = ("epoch %d/%d"):format(epoch, opts.epochs),
                               total = loader.steps}
  local m = train.means{"d_loss", "g_loss", "d_real", "d_fake"}
  for i, real in loader:batches() do
    local d_loss, g_loss, d_real, d_fake = step(real)
    steps = steps + 1
    train.check_finite("D loss", d_loss, epoch, steps)
    train.check_finite("G loss", g_loss, epoch, steps)
    m:add{d_loss = d_loss, g_loss = g_loss, d_real = d_real, d_fake = d_fake}
    bar:update(i, ("D %.3f G %.3f"):format(d_loss, g_loss))
    if gan.interrupted and gan.interrupted() then
      bar:close()
      io.stderr:write(("interrupted at epoch %d, step %d\n"):format(epoch, steps))
      os.exit(130)
    end
  end
  bar:close()
  log:row{epoch = epoch, step = steps, d_loss = m:get("d_loss"), g_loss = m:get("g_loss"),
          d_real = m:get("d_real"), d_fake = m:get("d_fake")}
  if epoch % opts.sample_every == 0 or epoch == opts.epochs then save_samples(epoch) end
end
log:close()
if gan.defer_interrupts then gan.defer_interrupts(false) end
io.stderr:write(("done: %d epochs, %d steps in %.1f s; samples in %s/samples\n")
  :format(opts.epochs, steps, gan.C.clock() - t0, opts.out))
