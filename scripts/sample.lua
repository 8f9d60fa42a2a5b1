-- scripts/sample.lua: images from a trained generator, without its script.
--
--   gan scripts/sample.lua --checkpoint out/strawberry/checkpoints/last.ckpt \
--       --n 64 --out grid.png            one grid of 64 samples
--   gan scripts/sample.lua --checkpoint FILE --n 64 --out DIR
--                                        DIR/sample_0001.png ... one per file
--   gan scripts/sample.lua --checkpoint FILE --n 8 --interpolate 10 --out walk.png
--                                        8 strips of 10 images, each walking
--                                        from one random latent to another
--
-- The checkpoint carries G's architecture, so any run's last.ckpt (or
-- epoch_NNNN.ckpt) works.  Latents are drawn from --seed; the walks follow
-- great circles between the two ends (spherical interpolation, Shoemake
-- 1985, as White recommends for GAN latents in "Sampling Generative
-- Networks", 2016), which keeps them at the norm a Gaussian latent has.
local gan = require "gan"

local spec = {
  {"checkpoint", "", "checkpoint file (e.g. OUT/checkpoints/last.ckpt)", meta = "FILE"},
  {"n", 64, "number of images (with --interpolate: of strips)", min = 1, max = 4096},
  {"out", "samples.png", "an image file for one grid (.png, .jpg, .jpeg or .bmp), else a "
   .. "folder for one PNG per image", meta = "DIR|FILE"},
  {"interpolate", 0, "write strips of K images between random latents (0: plain samples)",
   min = 0, max = 256, meta = "K"},
  {"cols", 0, "columns of the grid (0: about square; strips: K)", min = 0},
  {"seed", 1, "random seed of the latents", min = 0},
  {"device", "cpu", "cpu, cuda or auto", choices = {"cpu", "cuda", "auto"}},
}
local prog = "scripts/sample.lua"
local opts = gan.cli.parse(spec, arg or {}, prog,
  "Samples, or latent walks, from the generator G of a checkpoint.")
local function fail(msg, code)
  io.stderr:write(prog, ": ", gan.message(msg), "\n")
  os.exit(code or 1)
end
if opts.checkpoint == "" then fail("--checkpoint FILE is required", 2) end

local okdev, deverr = pcall(gan.device, opts.device)
if not okdev then fail(("--device %s: %s"):format(opts.device, deverr)) end
local ok, ck = pcall(gan.load, opts.checkpoint)
if not ok then fail(ck) end
if not ck.G then fail(("checkpoint '%s' has no generator G"):format(opts.checkpoint)) end
if not ck.noise then fail(("checkpoint '%s' has no sample noise to size the latents by")
                          :format(opts.checkpoint)) end
gan.seed(opts.seed)

local latent = ck.noise:shape()              -- (samples, Z) or (samples, Z, 1, 1)
local function latents(n)
  local shape = {table.unpack(latent)}
  shape[1] = n
  return gan.randn(shape)
end

-- slerp(a, b, t) on plain lists: along the great circle from a to b.
local function slerp(a, b, t)
  local dot, na, nb = 0, 0, 0
  for i = 1, #a do
    dot, na, nb = dot + a[i] * b[i], na + a[i] * a[i], nb + b[i] * b[i]
  end
  local cos = dot / math.sqrt(na * nb)
  local omega = math.acos(math.max(-1, math.min(1, cos)))
  local out = {}
  if math.sin(omega) < 1e-6 then             -- (anti)parallel: a straight line
    for i = 1, #a do out[i] = (1 - t) * a[i] + t * b[i] end
  else
    local s0 = math.sin((1 - t) * omega) / math.sin(omega)
    local s1 = math.sin(t * omega) / math.sin(omega)
    for i = 1, #a do out[i] = s0 * a[i] + s1 * b[i] end
  end
  return out
end

-- The flat values of each row of a (n, ...) tensor.
local function rows_of(t)
  local flat = t:view(t:size(1), t:numel() // t:size(1)):totable()
  return flat
end

local z, cols
if opts.interpolate > 0 then
  local K = opts.interpolate
  local ends_a, ends_b = rows_of(latents(opts.n)), rows_of(latents(opts.n))
  local all = {}
  for s = 1, opts.n do
    for k = 0, K - 1 do
      all[#all + 1] = slerp(ends_a[s], ends_b[s], K > 1 and k / (K - 1) or 0)
    end
  end
  local shape = {table.unpack(latent)}
  shape[1] = opts.n * K
  z = gan.tensor(all):view(shape)
  if gan.device() ~= "cpu" then z = z:to(gan.device()) end
  cols = K
else
  z = latents(opts.n)
  cols = gan.train.grid_cols(opts.n)
end
if opts.cols > 0 then cols = opts.cols end

local x = ck.G:forward(z)                    -- (N, 3*S*S) or (N, 3, S, S)
local range = ck.range or "0,1"
local written
local function save(t, path, c)
  local okw, err = pcall(gan.images.save_grid, t, path, {cols = c, range = range})
  if not okw then fail(err) end
end
if gan.images.grid_name(opts.out) then
  local okdir, err = gan.C.mkdir_p(gan.train.script_dir(opts.out))
  if not okdir then fail(err) end
  save(x, opts.out, cols)
  written = opts.out
else
  local dir = opts.out:gsub("(.)/+$", "%1")
  local okdir, err = gan.C.mkdir_p(dir)
  if not okdir then fail(err) end
  -- one image per file; a walk is one strip per file
  local per = opts.interpolate > 0 and opts.interpolate or 1
  local name = opts.interpolate > 0 and "strip" or "sample"
  for i = 1, x:size(1) // per do
    save(x:rows((i - 1) * per + 1, per), ("%s/%s_%04d.png"):format(dir, name, i), per)
  end
  written = dir .. "/"
end
io.stderr:write(("sample: %d %s from %s (epoch %d) to %s\n"):format(
  opts.n, opts.interpolate > 0 and ("strips of %d"):format(opts.interpolate) or "images",
  opts.checkpoint, ck.epoch or 0, written))
