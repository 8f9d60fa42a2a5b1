-- fuzz/make_corpus.lua: writes the seed corpus of fuzz/corpus/ again.
--   build/gan fuzz/make_corpus.lua          (from the repository's root)
-- Images: one small file of each kind and variant the loader handles, made
-- by spec/support's writers.  Checkpoints: gan.save of a tiny model, and
-- files with a blob only and a 4-d tensor.  real.jpg, a photo-like JPEG
-- (chroma subsampling, AC coefficients) that stb_image_write wrote once, is
-- kept as it is: nothing here writes it.
package.path = "spec/?.lua;" .. package.path
local png = require "support.png"
local F = require "support.formats"

local img, ck = "fuzz/corpus/image/", "fuzz/corpus/checkpoint/"
local function grad(x, y) return {x * 40 % 256, y * 40 % 256, (x + y) * 20 % 256, 200} end
F.write(img .. "rgb.png", png.encode(6, 5, 3, 8, grad))
F.write(img .. "grey.png", png.encode(5, 6, 1, 8, grad))
F.write(img .. "grey_alpha.png", png.encode(4, 4, 2, 8, grad))
F.write(img .. "rgba.png", png.encode(4, 4, 4, 8, grad))
F.write(img .. "rgb16.png", png.encode(3, 3, 3, 16, function(x, y)
  return {x * 20000, y * 20000, 65535} end))
F.write(img .. "palette.png", F.palette_png(4, 4, {{255, 0, 0}, {0, 0, 255}},
  function(x, y) return (x + y) % 2 end))
F.write(img .. "one.png", png.encode(1, 1, 3, 8, function() return {1, 2, 3} end))
F.write(img .. "rgb.bmp", F.bmp(5, 3, grad))
F.write(img .. "grey16.pgm", F.pnm(3, 3, 1, 65535, function(x) return {x * 30000} end))
F.write(img .. "rgb.ppm", F.pnm(3, 2, 3, 255, grad))
F.write(img .. "anim.gif", F.gif(6, 6, {{255, 0, 0}, {0, 0, 255}},
  {function() return 0 end, function(x) return x % 2 end}))
F.write(img .. "grey.jpg", F.jpeg(8, 8, {200}))
F.write(img .. "ycc.jpg", F.jpeg(16, 8, {76, 85, 255}))
F.write(img .. "cmyk.jpg", F.jpeg(8, 8, {255, 0, 0, 255}, {adobe = 0}))

gan.seed(1)
local nn = gan.nn
local G = nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU(0.2), nn.BatchNorm(3), nn.Linear(3, 2),
                        nn.Sigmoid())
local opt = gan.optim.Adam(G:parameters(), {lr = 0.01})
gan.save(ck .. "run.ckpt", {models = {G = G}, optims = {G = opt}, noise = gan.randn(2, 2),
                            epoch = 1, step = 2, opts = {size = 8}})
gan.C.ckpt_write(ck .. "blob.ckpt", {{name = "meta", blob = "return {}\n"}})
gan.C.ckpt_write(ck .. "tensor4d.ckpt", {{name = "x", value = gan.rand(1, 2, 2, 2)},
                                        {name = "y", value = gan.ones(1)}})
