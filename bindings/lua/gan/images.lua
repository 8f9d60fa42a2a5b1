-- gan/images.lua: photo folders in, grids out (PNG, JPEG or BMP, by name).
--
--   local x, skipped = gan.images.load("photos/", {size = 64, range = "0,1"})
--     x is (N, 3, size, size) on the current device, planar RGB;
--     range "0,1" (default) or "-1,1".  Undecodable files are skipped with a
--     warning naming each; a missing folder or no usable image is an error.
--   gan.images.save_grid(x, "grid.png", {cols = 10, range = "0,1"})
--     x is (N, 3, S, S) or (N, 3*S*S); the grid has 2-pixel gaps.
--     With background = true the PNG is encoded and written on a thread
--     while the script goes on (x can be changed at once); the call waits
--     for the grid before, and raises its failure if it had one.
--   gan.images.side(x) -> S for x (N, 3, S, S) or (N, 3*S*S)
--   gan.images.grid_name(path) -> whether save_grid takes that name (its
--     ending: .png, .jpg, .jpeg or .bmp)
--   gan.images.flush()
--     waits for the background grid, and raises its failure if it had one.
local gan = require "gan"

local images = {}

local function parse_range(r, fname)
  if r == nil or r == "0,1" or r == "[0,1]" then return false end
  if r == "-1,1" or r == "[-1,1]" then return true end
  error(("bad option 'range' to '%s' (\"0,1\" or \"-1,1\" expected, got %s)"):format(
    fname, tostring(r)), 3)
end

-- opts as given (a table, or nil: {}), or an error naming argument #i
local function options(opts, i, fname, example)
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #%d to '%s' (options table expected, e.g. %s, got %s)")
      :format(i, fname, example, type(opts)), 3)
  end
  return opts or {}
end

function images.load(dir, opts)
  if type(dir) ~= "string" then
    error(("bad argument #1 to 'load' (folder name expected, got %s)"):format(type(dir)), 2)
  end
  opts = options(opts, 2, "load", "{size = 64}")
  local size = opts.size or 128
  if math.type(size) ~= "integer" or size < 1 or size > 8192 then
    error(("bad option 'size' to 'load' (integer in 1..8192 expected, got %s)"):format(
      tostring(size)), 2)
  end
  local ok, x, skipped = pcall(gan.C.load_images, dir, size, parse_range(opts.range, "load"))
  if not ok then error(gan.message(x), 2) end  -- the message, at the caller
  local device = opts.device or gan.device()
  if device ~= "cpu" then x = x:to(device) end
  return x, skipped
end

-- images.side(x [, fname]) -> the side S of x's square RGB images: x is
-- (N, 3, S, S), or (N, 3*S*S) as a dense G makes them.
function images.side(x, fname)
  if x:dim() == 4 then return x:size(3) end
  local s = math.floor(math.sqrt(x:numel() / x:size(1) / 3) + 0.5)
  if 3 * s * s ~= x:numel() // x:size(1) then
    error(("%s: rows of %d values are not square RGB images"):format(fname or "side",
      x:numel() // x:size(1)), 3)
  end
  return s
end

images.grid_name = gan.C.grid_name

function images.save_grid(x, path, opts)
  if not gan.is_tensor(x) then
    error(("bad argument #1 to 'save_grid' (tensor expected, got %s)"):format(type(x)), 2)
  end
  if type(path) ~= "string" then
    error(("bad argument #2 to 'save_grid' (file name expected, got %s)"):format(type(path)), 2)
  end
  opts = options(opts, 3, "save_grid", "{cols = 4}")
  local cols = opts.cols or math.min(x:size(1), 10)
  gan.C.save_grid(x, path, images.side(x, "save_grid"), cols, parse_range(opts.range, "save_grid"),
                  opts.background)
  return path
end

function images.flush()
  gan.C.flush_grids()
end

return images
