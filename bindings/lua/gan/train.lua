-- gan/train.lua: what every training script shares, so that each script
-- keeps only its model and its loop: the run folder, the loss log, the
-- sample grids, timing and the guards.
local gan = require "gan"

local train = {}

-- Creates a folder and its parents (like mkdir -p); errors name the path.
function train.mkdir(path)
  local ok, err = gan.C.mkdir_p(path)
  if not ok then error(err, 2) end
  return path
end

-- The folder that holds a script: "scripts/x.lua" -> "scripts".
function train.script_dir(script)
  return (script or ""):match("^(.*)[/\\][^/\\]*$") or "."
end

function train.exists(path)
  return gan.C.is_dir(path)
end

-- A grid needs a column count: the divisor of n nearest above sqrt(n), so 10
-- samples make 5x2 and 64 make 8x8.
function train.grid_cols(n)
  local r = math.ceil(math.sqrt(n))
  for c = r, math.min(n, 2 * r) do
    if n % c == 0 then return c end
  end
  return r
end

-- loss.csv, one row per epoch, written and flushed as the run goes.
local Log = {}
Log.__index = Log

function train.csv(path, columns)
  local f, err = io.open(path, "w")
  if not f then error(("cannot write '%s': %s"):format(path, err), 2) end
  f:write(table.concat(columns, ","), "\n")
  f:flush()
  return setmetatable({f = f, columns = columns, path = path}, Log)
end

function Log:row(values)
  local cells = {}
  for i, c in ipairs(self.columns) do
    local v = values[c]
    cells[i] = math.type(v) == "integer" and tostring(v) or ("%.6g"):format(v)
  end
  self.f:write(table.concat(cells, ","), "\n")
  self.f:flush()
end

function Log:close() self.f:close() end

-- Stops the run when a loss is NaN or infinite: nothing good comes after.
function train.check_finite(what, v, epoch, step)
  if v ~= v or v == math.huge or v == -math.huge then
    error(("%s is %s at epoch %d, step %d: training diverged (try a lower --lr)"):format(
      what, tostring(v), epoch, step), 0)
  end
end

-- Average of the values a running sum holds.
local Mean = {}
Mean.__index = Mean
function train.means(keys)
  local m = setmetatable({n = 0, sum = {}}, Mean)
  for _, k in ipairs(keys) do m.sum[k] = 0 end
  return m
end
function Mean:add(values)
  self.n = self.n + 1
  for k, v in pairs(values) do self.sum[k] = (self.sum[k] or 0) + v end
end
function Mean:get(k) return self.n > 0 and self.sum[k] / self.n or 0 / 0 end

return train
