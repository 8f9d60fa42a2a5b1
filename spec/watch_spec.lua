-- --watch: the script is edited while it trains.  A good edit swaps the
-- loop functions in at the next epoch (one line says so; the models, the
-- optimizers and the data are not rebuilt); an edit that does not compile,
-- or whose functions fail, is reported and the previous functions go on.
local util = require "support.util"
local R = require "support.run"

-- The script file replaced in one step, as an editor saving it would.
local function save(path, text)
  util.write(path .. ".new", text)
  assert(os.rename(path .. ".new", path))
end

-- s with the first (plain) occurrence of 'old' replaced by 'new'.
local function replace(s, old, new)
  local a, b = s:find(old, 1, true)
  assert(a, "not found: " .. old)
  return s:sub(1, a - 1) .. new .. s:sub(b + 1)
end

local function count(s, text)
  local n, pos = 0, 1
  while true do
    local a, b = s:find(text, pos, true)
    if not a then return n end
    n, pos = n + 1, b + 1
  end
end

describe("--watch", function()
  it("reloads the loop functions when the script changes, and survives bad edits", function()
    local dir = util.tmpdir()
    local data = R.dataset(dir)
    local original = util.read(util.root .. "/scripts/strawberry.lua")
    local script = dir .. "/strawberry.lua"
    util.write(script, original)
    local marker = "  local function step(real)\n"
    assert.truthy(original:find(marker, 1, true), "the schedule function moved")

    local h = R.background(R.tiny(script, data, dir .. "/out",
                                  {"--epochs", "100000", "--sample-every", "100000", "--watch"}))
    finally(function() h:stop() end)
    h:wait_for("epoch 2/")

    -- 1. a good edit: the schedule now says which version it is, once
    save(script, replace(original, marker, "  local said = false\n" .. marker
      .. "    if not said then said = true io.stderr:write('LOOP v2\\n') end\n"))
    h:wait_for("LOOP v2")
    local err = h:err()
    assert.equal(1, count(err, "d_step, g_step, step reloaded before epoch"), err)
    assert.truthy(err:find("(models, optimizers and data kept)", 1, true), err)
    assert.truthy(err:find("reloaded before epoch", 1, true) < err:find("LOOP v2", 1, true))
    assert.equal(1, count(err, "data: 40 images"), err)          -- nothing was rebuilt
    local reload_epoch = tonumber(err:match("reloaded before epoch (%d+)"))

    -- 2. a syntax error: reported, v2 keeps running
    save(script, replace(original, marker, "  local x = = 1\n" .. marker))
    h:wait_for("cannot be used")
    err = h:err()
    assert.truthy(err:find("strawberry.lua:%d+:"), err)          -- the line of the error
    assert.truthy(err:find("the previous loop keeps running", 1, true), err)
    h:wait_for(("epoch %d/"):format(reload_epoch + 3))

    -- 3. a runtime error in the new step: reported, the previous loop goes on
    save(script, replace(original, marker, marker .. "    error('BOOM v3')\n"))
    h:wait_for("the reloaded loop failed")
    err = h:err()
    assert.truthy(err:find("BOOM v3", 1, true), err)
    assert.truthy(err:find("the previous loop runs again", 1, true), err)
    local after = tonumber(err:match(".*epoch (%d+)/100000"))
    h:wait_for(("epoch %d/"):format(after + 2))

    -- 4. a step whose values cannot be read: the same
    save(script, replace(original, marker, marker .. "    do return 'BAD v4' end\n"))
    h:wait_for("value #1 is a string")
    err = h:err()
    assert.equal(2, count(err, "the previous loop runs again"), err)
    after = tonumber(err:match(".*epoch (%d+)/100000"))
    h:wait_for(("epoch %d/"):format(after + 2))

    -- still one run, one data load, stopped cleanly
    h:signal("INT")
    local code
    code, err = h:finish()
    assert.equal(130, code, err)
    assert.equal(1, count(err, "data: 40 images"), err)
    assert.equal(3, count(err, "reloaded before epoch"), err)   -- v2, v3 and v4 (which failed)
    assert.falsy(err:find("traceback", 1, true), err)
    util.rmdir(dir)
  end)

  it("is off without --watch: edits do not reach a running script", function()
    local dir = util.tmpdir()
    local data = R.dataset(dir)
    local original = util.read(util.root .. "/scripts/strawberry.lua")
    local script = dir .. "/strawberry.lua"
    util.write(script, original)
    local h = R.background(R.tiny(script, data, dir .. "/out",
                                  {"--epochs", "100000", "--sample-every", "100000"}))
    finally(function() h:stop() end)
    h:wait_for("epoch 2/")
    save(script, replace(original, "  local function step(real)\n",
                         "  local function step(real)\n    error('should not run')\n"))
    h:wait_for("epoch 6/")
    h:signal("INT")
    local code, err = h:finish()
    assert.equal(130, code, err)
    assert.falsy(err:find("watch", 1, true), err)
    assert.falsy(err:find("should not run", 1, true), err)
    util.rmdir(dir)
  end)
end)
