-- bench/sensitivity.lua: how much the seed model's training amplifies
-- rounding, on the CPU alone.  Two runs from the same seed; in the second,
-- G's input gradient is scaled by 1 + PERTURB at step 1 (a rounding-sized
-- change, like another device's summation order).  Prints the largest
-- relative difference of the two runs' losses at each step, and the first
-- step where it passes 1e-3.  This is why bench/gpu_steps.lua compares the
-- devices step by step from the same state (bench/README.md).
--
--   gan bench/sensitivity.lua [--perturb 3e-7] [--steps 20] [--size 16] [--form keras]
local gan = require "gan"
local nn = gan.nn
local seed_model = dofile(((arg and arg[0] or ""):match("^(.*)[/\\]") or "bench") .. "/seed_model.lua")

local opts = gan.cli.parse({
  {"perturb", 3e-7, "relative change of G's input gradient at step 1", min = 0},
  {"steps", 20, "training steps", min = 1},
  {"size", 16, "image side of the seed model", min = 4},
  {"form", "keras", "Adam's form", choices = {"keras", "paper"}},
}, arg or {}, "bench/sensitivity.lua", "How much a GAN step amplifies rounding.")

local function run(perturb)
  gan.seed(11)
  gan.device("cpu")
  local S, Z, B = opts.size, 100, 100
  local G, D = seed_model.model(S, Z)
  local r = seed_model.pair(G, D, nn.BCE(), gan.rand(B, S * S * 3), Z, nil, opts.form)
  local function scale(g) g:scale(1 + perturb) end
  local losses = {}
  for i = 1, opts.steps do losses[i] = r.step(i == 1 and perturb > 0 and scale or nil) end
  return losses
end

local a, b = run(0), run(opts.perturb)
local first
for i = 1, opts.steps do
  local d = 0
  for k = 1, 2 do d = math.max(d, math.abs(a[i][k] - b[i][k]) / math.abs(a[i][k])) end
  if d > 1e-3 and not first then first = i end
  print(("step %2d  losses %.7f %.7f  perturbed %.7f %.7f  relative difference %.1e")
    :format(i, a[i][1], a[i][2], b[i][1], b[i][2], d))
end
print(first and ("the runs part by more than 1e-3 at step %d"):format(first)
      or ("the runs stay within 1e-3 for %d steps"):format(opts.steps))
