-- gan/data.lua: mini-batches of a dataset, reshuffled every epoch.
--
--   local loader = gan.data.loader(x, 100)     -- x: (N, ...) on any device
--   for epoch = 1, E do
--     for i, batch in loader:batches() do ... end   -- batch: (100, ...)
--   end
--
-- Each epoch draws a new permutation from the generator (gan.seed makes it
-- reproducible) and gathers rows into one batch buffer on the data's device:
-- the dataset stays where it is and nothing is allocated per batch.  An
-- epoch has floor(N / batch) full batches (the rest waits for the next
-- shuffle); a batch larger than N is cut to N.
local gan = require "gan"

local data = {}

local Loader = {}
Loader.__index = Loader

function data.loader(x, batch, opts)
  if not gan.is_tensor(x) then
    error(("bad argument #1 to 'loader' (tensor expected, got %s)"):format(type(x)), 2)
  end
  if math.type(batch) ~= "integer" or batch < 1 then
    error(("bad argument #2 to 'loader' (positive integer expected, got %s)"):format(
      tostring(batch)), 2)
  end
  opts = opts or {}
  local n = x:size(1)
  local b = math.min(batch, n)
  local shape = x:shape()
  shape[1] = b
  return setmetatable({
    x = x, n = n, batch = b, shuffle = opts.shuffle ~= false,
    index = gan.C.index(n),
    buf = gan.empty(shape, x:device()),
    steps = n // b,
  }, Loader)
end

-- An iterator over the epoch's batches: i, batch (the same buffer each time).
function Loader:batches()
  if self.shuffle then self.index:shuffle() end
  local i = 0
  return function()
    i = i + 1
    if i > self.steps then return nil end
    self.index:gather(self.buf, self.x, (i - 1) * self.batch + 1)
    return i, self.buf
  end
end

return data
