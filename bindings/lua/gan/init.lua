-- gan/init.lua: completes the module table that luaopen_gan made in C.
--
-- The C half already put there: tensors (gan.tensor, gan.zeros, gan.randn,
-- ...), gan.device, gan.seed, gan.memory and gan.C (the raw ops).  This file
-- attaches the Lua half: gan.nn (modules and losses), gan.optim, gan.images,
-- gan.data, gan.cli (script options), gan.progress (the progress bar),
-- gan.checkpoint with gan.save / gan.load, gan.report (the run's HTML page)
-- and gan.train (what training scripts share).
local gan = package.loaded.gan

local tensor_mt = debug.getregistry()["gan.Tensor"]

-- gan.is_tensor(x): is x a tensor (freed or not)?
function gan.is_tensor(x)
  return getmetatable(x) == tensor_mt
end

-- gan.message(err): an error's text as a user reads it, without the
-- "file:line: " that error() put in front of it
function gan.message(err)
  return (tostring(err):gsub("^[^:\n]*:%d+: ", ""))
end

gan.nn = require "gan.nn"
require "gan.conv"             -- adds Conv2d, ConvTranspose2d, BatchNorm2d, Reshape, Flatten to gan.nn
gan.optim = require "gan.optim"
gan.images = require "gan.images"
gan.data = require "gan.data"
gan.cli = require "gan.cli"
gan.progress = require "gan.progress"
gan.checkpoint = require "gan.checkpoint"
gan.report = require "gan.report"

-- gan.show(v) -> a short text of v, as the REPL prints it: a plain table
-- (no metatable) as {1, 2, {3, 4}, k = "v"}, nested at most 3 deep and with
-- at most 64 values (a tensor in it as its first line: "tensor 2x3 (cpu)");
-- anything else as tostring does.  nil when the table is
-- larger, deeper or has keys of other kinds (the REPL then prints it as
-- print does: "table: 0x...").
local function show(v, depth, budget)
  local t = type(v)
  if t == "string" then
    budget.n = budget.n - 1
    return (("%q"):format(v):gsub("\\\n", "\\n"))
  end
  if gan.is_tensor(v) and depth > 1 then  -- inside a table: its first line only
    budget.n = budget.n - 1
    return (tostring(v):match("^[^\n]*"))
  end
  if t ~= "table" or getmetatable(v) ~= nil then
    budget.n = budget.n - 1
    return tostring(v)
  end
  if depth > 3 then return nil end
  local n, parts, names = #v, {}, {}
  if n > budget.n then return nil end
  for k in pairs(v) do
    if type(k) == "string" then
      names[#names + 1] = k
      if n + #names > budget.n then return nil end  -- before sorting a huge table
    elseif math.type(k) ~= "integer" or k < 1 or k > n then
      return nil
    end
  end
  table.sort(names)
  for i = 1, n do
    local s = show(v[i], depth + 1, budget)
    if s == nil or budget.n < 0 then return nil end
    parts[#parts + 1] = s
  end
  for _, k in ipairs(names) do
    local s = show(v[k], depth + 1, budget)
    if s == nil or budget.n < 0 then return nil end
    local key = gan.checkpoint.is_name(k) and k or ("[%q]"):format(k)
    parts[#parts + 1] = key .. " = " .. s
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end
function gan.show(v)
  return show(v, 1, {n = 64})
end

gan.train = require "gan.train"

-- gan.save(path, {models = {G = G, D = D}, optims = ..., noise = ..., ...})
-- gan.load(path) -> {G =, D =, noise =, epoch =, step =, opts =, ...}
gan.save = gan.checkpoint.save
gan.load = gan.checkpoint.load
gan.metrics = require "gan.metrics"
gan.augment = require "gan.augment"

return gan
