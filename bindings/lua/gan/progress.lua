-- gan/progress.lua: a tqdm-like progress bar on stderr.
--
--   epoch 12/500 |######    | 3/4 [00:02<00:01, 1.9 it/s] D 0.612 G 0.981
--
-- On a terminal the line is redrawn in place; otherwise (a log file, a
-- pipe) only the finished line of each bar is written, so logs stay short.
local gan = require "gan"

local progress = {}

local Bar = {}
Bar.__index = Bar

local function clock() return gan.C.clock() end

local function hms(s)
  s = math.floor(s + 0.5)
  if s >= 3600 then
    return ("%d:%02d:%02d"):format(s // 3600, s % 3600 // 60, s % 60)
  end
  return ("%02d:%02d"):format(s // 60, s % 60)
end

-- progress.bar{label = "epoch 1/500", total = 4, width = 10, out = io.stderr,
--              initial = 0, text = ""}: 'initial' steps were done before
-- (a resumed epoch); the rate counts only the steps done since.
function progress.bar(o)
  local out = o.out or io.stderr
  return setmetatable({
    label = o.label or "", total = o.total, width = o.width or 10, out = out,
    tty = o.tty == nil and gan.C.isatty(out) or o.tty,
    start = clock(), n = o.initial or 0, initial = o.initial or 0, text = o.text or "",
    last_draw = -1,
  }, Bar)
end

function Bar:line()
  local elapsed = clock() - self.start
  local frac = self.total > 0 and self.n / self.total or 1
  local fill = math.floor(frac * self.width + 0.5)
  local rate = elapsed > 0 and (self.n - self.initial) / elapsed or 0
  local left = rate > 0 and (self.total - self.n) / rate or 0
  return ("%s |%s%s| %d/%d [%s<%s, %.1f it/s]%s"):format(
    self.label, ("#"):rep(fill), (" "):rep(self.width - fill), self.n, self.total,
    hms(elapsed), hms(left), rate, self.text ~= "" and (" " .. self.text) or "")
end

-- bar:update(n, text): n steps done; text is shown after the counters.
function Bar:update(n, text)
  self.n = n
  self.text = text or self.text
  if self.tty then
    local now = clock()
    if now - self.last_draw >= 0.1 or n == self.total then -- at most 10 redraws/s
      self.last_draw = now
      self.out:write("\r", self:line(), "\27[K")
      self.out:flush()
    end
  end
end

function Bar:close(text)
  self.text = text or self.text
  if self.tty then
    self.out:write("\r", self:line(), "\27[K\n")
  else
    self.out:write(self:line(), "\n")
  end
  self.out:flush()
end

return progress
