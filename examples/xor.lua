-- examples/xor.lua: a two-layer perceptron learns XOR with BCE and Adam.
--
--   gan examples/xor.lua [steps]
-- Prints the loss as it falls and the four predictions; returns the final
-- loss (the spec checks that it is under 0.05).
local gan = require "gan"
local nn = gan.nn

local given = arg and arg[1]
local steps = math.tointeger(tonumber(given or 2000))
if not steps or steps < 5 then
  io.stderr:write(("usage: gan examples/xor.lua [steps]  (steps: an integer, at least 5; "
    .. "default 2000)%s\n"):format(given and given ~= "--help"
      and ("\nexamples/xor.lua: bad steps '%s'"):format(given) or ""))
  os.exit(given == "--help" and 0 or 2)
end
gan.seed(1)

local x = gan.tensor{{0, 0}, {0, 1}, {1, 0}, {1, 1}}  -- (4, 2)
local y = gan.tensor{{0}, {1}, {1}, {0}}              -- (4, 1)

local model = nn.Sequential(
  nn.Linear(2, 8), nn.Tanh(),                         -- (4, 8)
  nn.Linear(8, 1), nn.Sigmoid())                      -- (4, 1)
local loss_fn = nn.BCE()
local opt = gan.optim.Adam(model:parameters(), {lr = 0.05})

local loss
for step = 1, steps do
  model:zero_grad()
  local p = model:forward(x)
  loss = loss_fn:forward(p, y)
  model:backward(x, loss_fn:backward())
  opt:step()
  if step % (steps // 5) == 0 then print(("step %5d  loss %.5f"):format(step, loss)) end
end

local p = model:forward(x):totable()
for i, row in ipairs(x:totable()) do
  print(("%d xor %d -> %.3f"):format(row[1], row[2], p[i][1]))
end
return loss
