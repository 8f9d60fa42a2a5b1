-- bench/sample_step.lua: what a run's sample step makes the training loop
-- wait, with the grid's PNG written in the loop (background = false) and on
-- a thread (background = true, what gan/train.lua does).
--
--   gan bench/sample_step.lua [--device cpu] [--size 128] [--samples 10]
--                             [--rounds 15] [--gap 0.2]
--
-- One sample step is what Run:sample does: the seed's G (untrained, in
-- evaluation mode) on a fixed noise batch, then the grid.  Between two
-- sample steps the main thread stays busy for --gap seconds, as it is when
-- it drives training steps.  The ways alternate, one step each, for
-- --rounds rounds, so that all see the same machine; a third way, G alone,
-- gives the grid's share.  Prints the median wait of each in ms.  The
-- thread needs a core the loop does not use: on a GPU run the host has
-- them; on a CPU run OpenBLAS wants them all, and the gain is smaller.
local gan = require "gan"
local M = dofile("bench/seed_model.lua")

local spec = {
  {"device", "cpu", "cpu or cuda", choices = {"cpu", "cuda"}},
  {"size", 128, "images are SIZE x SIZE", min = 1, max = 1024},
  {"samples", 10, "images per grid", min = 1},
  {"rounds", 15, "sample steps of each way", min = 1},
  {"gap", 0.2, "seconds the main thread is busy between sample steps", min = 0},
  {"out", "", "folder for the grids (none: a temporary one)"},
}
local opts = gan.cli.parse(spec, arg or {}, "bench/sample_step.lua",
  "Times a run's sample step with the PNG written in the loop and on a thread.")
gan.device(opts.device)
gan.seed(1)

local out = opts.out
if out == "" then
  out = os.tmpname()
  os.remove(out)
end
os.execute(("mkdir -p '%s'"):format(out))

local G = M.model(opts.size, 100)
G:evaluate()
local noise = gan.randn(opts.samples, 100)
local cols = gan.train.grid_cols(opts.samples)

local function sample(way, name)
  local x = G:forward(noise)
  if way == "G only" then return x:to("cpu") end  -- the copy the grid makes
  gan.images.save_grid(x, ("%s/%s.png"):format(out, name), {cols = cols,
                                                           background = way == "background"})
end

local function busy(s)  -- the main thread at work, as in a training step
  local t = gan.C.clock()
  repeat until gan.C.clock() - t >= s
end

local WAYS = {"G only", "plain", "background"}
local waits = {}
for _, way in ipairs(WAYS) do waits[way] = {} end
sample("plain", "warm")
for r = 1, opts.rounds do
  for _, way in ipairs(WAYS) do
    busy(opts.gap)
    local t = gan.C.clock()
    sample(way, ("%s_%02d"):format(way:gsub(" ", "_"), r))
    local w = waits[way]
    w[#w + 1] = gan.C.clock() - t
  end
end
gan.images.flush()
os.execute(("rm -rf '%s'"):format(out))

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end
local g, plain, bg = median(waits["G only"]) * 1e3, median(waits.plain) * 1e3,
                    median(waits.background) * 1e3
print(("sample step wait, %dx%d, %d images, %s (median of %d): G alone %.1f ms, "
  .. "G and the grid written in the loop %.1f ms, G and the grid on a thread %.1f ms; "
  .. "the grid's own wait %.1f ms in the loop, %.1f ms on a thread"):format(
  opts.size, opts.size, opts.samples, opts.device, opts.rounds, g, plain, bg,
  plain - g, bg - g))
