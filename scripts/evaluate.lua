-- scripts/evaluate.lua: how good a trained generator is, in numbers.
--
--   gan scripts/evaluate.lua --real DIR --checkpoint FILE [--n 400]
--   gan scripts/evaluate.lua --real DIR --fake DIR2        (images on disk)
--
-- Prints, for --n samples of the checkpoint's G (fresh noise from --seed):
--  - the sliced Wasserstein distance (Karras et al. 2018, x 1e3) between
--    the samples and the real images, per level of the Laplacian pyramid
--    and on average (gan.metrics.swd);
--  - the real-vs-real floor: the same metric between two random halves of
--    DIR, what a perfect generator would score (with half as many images,
--    so slightly above the true floor);
--  - the memorisation check: each sample's L2 distance to its nearest real
--    image, against the same distance for real images left out of the
--    reference set in turn (gan.metrics.memorisation).
-- Everything is computed at --size (default: the run's size, or 64 for
-- --fake) in [0, 1]: the images read, and G's samples when G makes another
-- size, are resized to it, and the first line says so.
local gan = require "gan"

local spec = {
  {"real", "", "folder of real (training) images", meta = "DIR"},
  {"checkpoint", "", "a checkpoint with a generator G (OUT/checkpoints/last.ckpt)", meta = "FILE"},
  {"fake", "", "instead of --checkpoint: a folder of generated images", meta = "DIR"},
  {"n", 400, "number of samples", min = 2, max = 100000},
  {"size", 0, "image side for the metrics, every image resized to it (0: the run's --size, "
   .. "else 64)", min = 0, max = 1024},
  {"seed", 1, "random seed: the samples' noise, patches and directions", min = 0},
  {"device", "cpu", "cpu, cuda or auto (for G; the metrics run on the cpu)",
   choices = {"cpu", "cuda", "auto"}},
}
local prog = "scripts/evaluate.lua"
local opts = gan.cli.parse(spec, arg or {}, prog,
  "SWD against the real images and the real-vs-real floor, and a memorisation check.")
local function fail(msg, code)
  io.stderr:write(prog, ": ", gan.message(msg), "\n")
  os.exit(code or 1)
end
if opts.real == "" then fail("--real DIR is required", 2) end
if (opts.checkpoint == "") == (opts.fake == "") then
  fail("give one of --checkpoint FILE and --fake DIR", 2)
end

local okdev, deverr = pcall(gan.device, opts.device)
if not okdev then fail(("--device %s: %s"):format(opts.device, deverr)) end
gan.seed(opts.seed)

---------------------------------------------------------------------------
-- The samples, in [0, 1] on the cpu
---------------------------------------------------------------------------
local fake, what, S
-- where S comes from, for the line that says what was compared
local size_from = opts.size > 0 and "--size" or "the default: set --size"
if opts.checkpoint ~= "" then
  local ok, ck = pcall(gan.load, opts.checkpoint)
  if not ok then fail(ck) end
  if not ck.G then fail(("checkpoint '%s' has no generator G"):format(opts.checkpoint)) end
  if not ck.noise then fail(("checkpoint '%s' has no sample noise"):format(opts.checkpoint)) end
  S = opts.size > 0 and opts.size or (ck.opts and ck.opts.size) or 64
  if opts.size == 0 and ck.opts and ck.opts.size then size_from = "the run's --size" end
  local shape = ck.noise:shape()
  shape[1] = math.min(opts.n, 100)
  local z = gan.empty(shape)
  local native  -- G's images at the side G makes them, in [0, 1]
  ck.G:evaluate()
  for first = 1, opts.n, shape[1] do
    local count = math.min(shape[1], opts.n - first + 1)
    z:normal()
    local x = ck.G:forward(z)
    local okside, side = pcall(gan.images.side, x, "G's output")
    if not okside then fail(side) end
    native = native or gan.empty(opts.n, 3, side, side, "cpu")
    native:rows(first, count):copy(x:rows(1, count))
  end
  if ck.range == "-1,1" then
    native:scale(0.5):add(gan.ones(native:shape(), "cpu"), 0.5)  -- [-1, 1] -> [0, 1]
  end
  fake = native
  local G_side = native:size(3)
  if G_side ~= S then
    -- resized as the real photos are: through PNG files read back at S
    -- (8 bits a channel, as for --fake), in a folder removed after
    local dir = os.tmpname()
    os.remove(dir)
    local okd, err = gan.C.mkdir_p(dir)
    if not okd then fail(err) end
    local names = {}
    for i = 1, opts.n do
      names[i] = ("%s/%05d.png"):format(dir, i)
      gan.images.save_grid(native:rows(i, 1), names[i], {cols = 1})
    end
    local okl, x = pcall(gan.images.load, dir, {size = S, device = "cpu"})
    for _, f in ipairs(names) do os.remove(f) end
    os.remove(dir)
    if not okl then fail(x) end
    fake = x
    size_from = ("%s; G's %dx%d resized"):format(size_from, G_side, G_side)
  end
  what = ("%d samples of G from %s (epoch %s)"):format(opts.n, opts.checkpoint,
                                                     tostring(ck.epoch))
else
  S = opts.size > 0 and opts.size or 64
  local ok, x = pcall(gan.images.load, opts.fake, {size = S, device = "cpu"})
  if not ok then fail(x) end
  fake = x
  what = ("%d images from %s"):format(fake:size(1), opts.fake)
end

local ok, real = pcall(gan.images.load, opts.real, {size = S, device = "cpu"})
if not ok then fail(real) end
local N = real:size(1)
if N < 4 then fail(("%s has %d images: the floor needs at least 4"):format(opts.real, N)) end
print(("evaluate: %s; %d real images from %s; compared at %dx%d (%s)"):format(
  what, N, opts.real, S, S, size_from))

---------------------------------------------------------------------------
-- SWD: samples against the real images, and two halves of the real ones
---------------------------------------------------------------------------
local metrics = gan.metrics
local swd, levels = metrics.swd(fake, real)
local index = gan.C.index(N)
index:shuffle()
local h = N // 2
local half_a, half_b = gan.empty(h, 3, S, S, "cpu"), gan.empty(h, 3, S, S, "cpu")
index:gather(half_a, real, 1)
index:gather(half_b, real, h + 1)
local floor, floor_levels = metrics.swd(half_a, half_b)

local head = {("%-36s"):format("SWD x 1e3 (Karras et al. 2018)")}
for _, r in ipairs(levels.res) do head[#head + 1] = ("%8s"):format(r .. "px") end
head[#head + 1] = ("%8s"):format("avg")
print(table.concat(head))
local function row(label, vals, avg, fmt)
  local cells = {("%-36s"):format(label)}
  for _, v in ipairs(vals) do cells[#cells + 1] = (fmt or "%8.2f"):format(v) end
  cells[#cells + 1] = (fmt or "%8.2f"):format(avg)
  print(table.concat(cells))
end
row(("  samples vs real (%d vs %d)"):format(fake:size(1), N), levels, swd)
row(("  real vs real, halves (%d vs %d)"):format(h, h), floor_levels, floor)
local ratios = {}
for i, v in ipairs(levels) do ratios[i] = v / floor_levels[i] end
row("  ratio to the floor", ratios, swd / floor)

---------------------------------------------------------------------------
-- Memorisation: nearest real image of each sample, and of each real image
-- among the others
---------------------------------------------------------------------------
local mem = metrics.memorisation(fake, real)
print(("memorisation: L2 distance to the nearest real image (%dx%dx3 values in [0, 1])")
  :format(S, S))
print(("  %-30s%8s%8s%8s%8s"):format("", "median", "mean", "p05", "min"))
local function stats(label, s)
  print(("  %-30s%8.2f%8.2f%8.2f%8.2f"):format(label, s.median, s.mean, s.p05, s.min))
end
stats(("samples (%d)"):format(mem.samples.n), mem.samples)
stats(("real, leaving each out (%d)"):format(mem.real.n), mem.real)
print(("  median ratio samples / real: %.2f; samples nearer than 95%% of real images: %.1f%%")
  :format(mem.ratio, 100 * mem.below))
print(("  verdict: %s"):format(mem.ok and "no sign of memorisation (samples are not nearer "
                               .. "to the training images than new real images are)"
                               or "samples are nearer to training images than real images "
                               .. "are to each other: possible memorisation"))
