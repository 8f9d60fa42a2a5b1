-- gan/metrics.lua: how good a generator is, as numbers.
--
--   local avg, levels = gan.metrics.swd(a, b, {size = 64})
--     the sliced Wasserstein distance of Karras et al. 2018 (ProGAN),
--     times 1000, between two sets of images: tensors (N, 3, S, S) or
--     folders (loaded at 'size', else at the side of the other set when it
--     is a tensor, else 64).  avg is the mean over the
--     levels of a Laplacian pyramid (S, S/2, ... 16); levels[i] is the
--     value at resolution levels.res[i].  Lower is closer; a set against
--     another draw of the same distribution gives the floor.  Options:
--     patch (7), patches (128 per image and level), repeats (4), dirs (128),
--     min_res (16).  Patches and directions come from the gan generator.
--
--   local r = gan.metrics.memorisation(samples, train [, {heldout = x}])
--     for each sample, the L2 distance to its nearest training image,
--     against the same distance for real images that are not in the
--     reference set: 'heldout' if given, else each training image against
--     the others (leave one out).  r.samples and r.real summarise the two
--     (n, mean, median, p05, min); r.ratio = median of samples / median of
--     real; r.below = the share of samples closer than 95% of real images;
--     r.ok = r.ratio >= 1 (no sign of copying).
--
--   local d, idx = gan.metrics.nearest(q, ref [, leave_one_out])
--     the distances and (1-based) indices of each row's nearest reference.
--
-- The metrics run on the CPU; tensors elsewhere are copied.  For the
-- distances, both sets must be in the same range (folders load in [0, 1]).
local gan = require "gan"
local C = gan.C

local metrics = {}

-- The side a folder is read at: opts.size, else that of the images given
-- as a tensor with it (so a folder fits them), else 64.
local function side_for(opts, ...)
  if opts.size then return opts.size end
  for i = 1, select("#", ...) do
    local x = select(i, ...)
    if gan.is_tensor(x) and x:dim() == 4 then return x:size(3) end
  end
  return 64
end

local function images(x, opts, i, fname, size)
  if type(x) == "string" then
    local ok, t = pcall(gan.images.load, x, {size = size or side_for(opts), device = "cpu"})
    if not ok then error(t, 3) end
    return t
  end
  if not gan.is_tensor(x) then
    error(("bad argument #%d to '%s' (tensor or folder expected, got %s)"):format(
      i, fname, type(x)), 3)
  end
  if x:dim() ~= 4 or x:size(2) ~= 3 or x:size(3) ~= x:size(4) then
    error(("bad argument #%d to '%s' (images (N, 3, S, S) expected, got %s)"):format(
      i, fname, table.concat(x:shape(), "x")), 3)
  end
  if opts.size and x:size(3) ~= opts.size then
    error(("bad argument #%d to '%s' (images of %dx%d, but size is %d)"):format(
      i, fname, x:size(3), x:size(3), opts.size), 3)
  end
  return x
end
metrics._images = images

function metrics.swd(a, b, opts)
  opts = opts or {}
  local size = side_for(opts, a, b)
  a = images(a, opts, 1, "swd", size)
  b = images(b, opts, 2, "swd", size)
  local avg, levels, res = C.swd(a, b, opts)
  levels.res = res
  return avg, levels, res
end

function metrics.nearest(q, ref, leave_one_out)
  return C.nearest(q, ref, leave_one_out)
end

-- n, mean, median, 5th percentile and minimum of a list
local function summary(d)
  local s = table.move(d, 1, #d, 1, {})
  table.sort(s)
  local sum = 0
  for _, v in ipairs(s) do sum = sum + v end
  local function q(p) return s[math.max(1, math.min(#s, math.floor(p * (#s - 1) + 1.5)))] end
  return {n = #s, mean = sum / #s, median = q(0.5), p05 = q(0.05), min = s[1]}
end
metrics._summary = summary

function metrics.memorisation(samples, train, opts)
  opts = opts or {}
  local size = side_for(opts, samples, train, opts.heldout)
  samples = images(samples, opts, 1, "memorisation", size)
  train = images(train, opts, 2, "memorisation", size)
  if samples:size(3) ~= train:size(3) then
    error(("bad argument #2 to 'memorisation' (images of %dx%d, but the samples are %dx%d)")
      :format(train:size(3), train:size(3), samples:size(3), samples:size(3)), 2)
  end
  local ds, idx = C.nearest(samples, train)
  local dr
  if opts.heldout then
    dr = C.nearest(images(opts.heldout, opts, 3, "memorisation", size), train)
  else
    dr = C.nearest(train, train, true)
  end
  local s, r = summary(ds), summary(dr)
  local below = 0
  for _, v in ipairs(ds) do
    if v < r.p05 then below = below + 1 end
  end
  return {samples = s, real = r, ratio = s.median / r.median, below = below / #ds,
          ok = s.median >= r.median, distances = ds, index = idx, real_distances = dr}
end

return metrics
