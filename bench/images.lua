-- bench/images.lua: decoding and resizing speed of gan.images.load, for
-- bench/cpu.sh.
--
--   gan bench/images.lua [--data DIR] [--size 128] [--range 1-10]
--
-- Times one gan.images.load(DIR, {size = S}) (every image in DIR: decode,
-- resize to S x S, convert to floats in [0, 1]) and prints
--   images <n>, images_s <seconds>, images_per_s <n / seconds>.
-- (The CI smoke run of cpu.sh points --data at a folder of a few links.)
local gan = require "gan"

local spec = {
  {"data", "../shared/data/riseholme-ripe", "folder of images", meta = "DIR"},
  {"size", 128, "images are resized to SIZE x SIZE", min = 1, max = 8192},
}
local opts = gan.cli.parse(spec, arg or {}, "bench/images.lua",
  "Times decoding and resizing a folder of images.")
gan.device("cpu")

local load_opts = {size = opts.size}
local t0 = gan.C.clock()
local ok, x = pcall(gan.images.load, opts.data, load_opts)
local s = gan.C.clock() - t0
if not ok then
  io.stderr:write("images.lua: ", tostring(x), "\n")
  os.exit(1)
end
local n = x:size(1)
print(("images %d"):format(n))
print(("images_s %.3f"):format(s))
print(("images_per_s %.1f"):format(n / s))
