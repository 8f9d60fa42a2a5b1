-- spec/support/run.lua: what the run specs share -- a small generated
-- dataset, the strawberry script's arguments for a tiny run, and the gan
-- program in the background (to send it Ctrl-C, or to edit its script while
-- it runs).
local util = require "support.util"
local png = require "support.png"

local run = {}

-- n generated 8x8 PNGs in dir (a pattern per image, no randomness).
function run.dataset(dir, n)
  for i = 1, n or 40 do
    png.write(("%s/img%03d.png"):format(dir, i), 8, 8, 3, 8, function(x, y)
      return {(x * 30 + i * 7) % 256, (y * 30 + i * 3) % 256, (x * y * 5 + i) % 256}
    end)
  end
  return dir
end

-- Arguments of a tiny strawberry run: 40 images of 8x8, batches of 10, so
-- 4 steps an epoch that take milliseconds.
function run.tiny(script, data, out, extra)
  local args = {script, "--data", data, "--size", "8", "--batch", "10", "--device", "cpu",
                "--seed", "3", "--out", out}
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  return args
end

local Bg = {}
Bg.__index = Bg

-- run.background(args [, env]) -> a handle on `gan args...` running in the
-- background (with the variables of the table env), its stderr in h.err_path.
function run.background(args, env)
  local dir = util.tmpdir()
  local h = setmetatable({dir = dir, err_path = dir .. "/err", out_path = dir .. "/out"}, Bg)
  local cmd = {}
  for k, v in pairs(env or {}) do cmd[#cmd + 1] = k .. "=" .. util.quote(v) end
  cmd[#cmd + 1] = util.quote(util.bin)
  for _, a in ipairs(args) do cmd[#cmd + 1] = util.quote(a) end
  -- the subshell's own stderr (a "Killed" when a spec sends SIGKILL) is dropped
  os.execute(("(%s <%s >%s 2>%s & echo $! >%s; wait $!; echo $? >%s) 2>/dev/null &"):format(
    table.concat(cmd, " "), "/dev/null", util.quote(h.out_path), util.quote(h.err_path),
    util.quote(dir .. "/pid"), util.quote(dir .. "/code")))
  h:until_true(function() return (util.read(dir .. "/pid") or ""):match("%d+") end, 10)
  h.pid = util.read(dir .. "/pid"):match("%d+")
  return h
end

function Bg:err() return util.read(self.err_path) or "" end

-- Polls f() every 50 ms until it is true; fails after 'timeout' seconds.
function Bg:until_true(f, timeout, what)
  local t0 = os.time()
  while not f() do
    if os.time() - t0 > (timeout or 60) then
      error(("timed out waiting for %s; stderr so far:\n%s"):format(what or "the run",
                                                                     self:err()), 2)
    end
    os.execute("sleep 0.05")
  end
end

-- Waits until stderr contains 'text' (plain) 'count' times.
function Bg:wait_for(text, timeout, count)
  self:until_true(function()
    local n, pos, err = 0, 1, self:err()
    while true do
      local s, e = err:find(text, pos, true)
      if not s then break end
      n, pos = n + 1, e + 1
    end
    return n >= (count or 1)
  end, timeout, ("'%s' in its stderr"):format(text))
end

function Bg:signal(sig)
  os.execute(("kill -%s %s"):format(sig, self.pid))
end

-- Kills the run if it is still going (a failed spec must not leave it).
function Bg:stop()
  if not self.done and not util.read(self.dir .. "/code") then self:signal("KILL") end
end

-- Waits for the end: returns the exit status and stderr; removes the files.
function Bg:finish(timeout)
  -- the file exists (empty) a moment before the status is in it
  self:until_true(function() return (util.read(self.dir .. "/code") or ""):match("%d+") end,
                  timeout, "its exit")
  local code = tonumber(util.read(self.dir .. "/code"):match("%d+"))
  local err = self:err()
  self.done = true
  util.rmdir(self.dir)
  return code, err
end

return run
