-- OUT/report.html: self-contained (nothing fetched), the four curves from
-- loss.csv, the sample grids, options and timings; rewritten at sample
-- steps and at the end.  Last, the page as a browser draws it: headless Chromium
-- takes a screenshot, which must not be blank and must show the curves in
-- their colours.  Without chromium that check is pending.
local gan = require "gan"
local report = gan.report
local util = require "support.util"
local R = require "support.run"

local script = util.root .. "/scripts/strawberry.lua"

local function count(s, text)
  local n, pos = 0, 1
  while true do
    local a, b = s:find(text, pos, true)
    if not a then return n end
    n, pos = n + 1, b + 1
  end
end

-- Nothing in the page may make a browser fetch anything.
local function assert_self_contained(html)
  local lower = html:lower()
  for _, bad in ipairs{"<script", "<link", "@import", "@font-face", "url(", "src=\"http",
                       "src='http", "href=\"http", "<iframe", "<object", "<embed"} do
    assert.falsy(lower:find(bad, 1, true), bad)
  end
  for src in lower:gmatch('src="([^"]*)"') do
    assert.truthy(src:find("^data:image/png;base64,"), src:sub(1, 60))
  end
end

describe("the report", function()
  it("encodes base64 as RFC 4648 says", function()
    local cases = {[""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==",
                   fooba = "Zm9vYmE=", foobar = "Zm9vYmFy", ["\0\255\254"] = "AP/+"}
    for plain, coded in pairs(cases) do assert.equal(coded, report.base64(plain)) end
  end)

  it("leaves the last page whole when a write fails (a full disk)", function()
    local dir = util.tmpdir()
    util.write(dir .. "/report.html", "the last good page")
    -- the temporary file is /dev/full: every write fails with ENOSPC
    os.execute(("ln -s /dev/full '%s/report.html.tmp'"):format(dir))
    local ok, err = pcall(report.write, dir .. "/report.html",
                          {title = "t", csv = dir .. "/loss.csv", epoch = 1, epochs = 2})
    assert.is_false(ok)
    assert.truthy(tostring(err):find(("cannot write report '%s/report.html': "):format(dir)
                                     .. "No space left on device", 1, true), err)
    assert.equal("the last good page", util.read(dir .. "/report.html"))
    -- and the next write, with room, replaces it
    report.write(dir .. "/report.html", {title = "t", csv = dir .. "/loss.csv", epoch = 1,
                                         epochs = 2})
    assert.truthy(util.read(dir .. "/report.html"):find("<!DOCTYPE html>", 1, true))
    util.rmdir(dir)
  end)

  it("draws the four curves from loss.csv, with axes and a legend", function()
    local dir = util.tmpdir()
    util.write(dir .. "/loss.csv", "epoch,step,d_loss,g_loss,d_real,d_fake\n"
               .. "1,4,0.7,0.9,0.6,0.4\n2,8,0.5,1.2,0.7,0.3\n3,12,nan,1.5,0.8,0.2\n")
    local html = report.html{title = "t <&>", csv = dir .. "/loss.csv", epoch = 3, epochs = 10,
                             step = 12, opts = {lr = 2e-4, name = "<b>"}, times = {1, 2, 3}}
    util.rmdir(dir)
    assert_self_contained(html)
    for _, c in ipairs(report.curves) do
      assert.truthy(html:find('stroke="' .. c.color .. '"', 1, true), c.label)
      assert.truthy(html:find(">" .. c.label .. "</text>", 1, true), c.label)
    end
    -- D loss has a NaN at epoch 3: its line stops at epoch 2, the others go on
    assert.equal(4, count(html, "<polyline"))
    assert.equal(2, count(html, "<svg"))
    assert.truthy(html:find("t &lt;&amp;&gt;", 1, true))          -- escaped
    assert.truthy(html:find("&lt;b&gt;", 1, true))
    assert.falsy(html:find("<b>", 1, true))
    assert.truthy(html:find("2 mean", 1, true), "seconds per epoch")
    assert.truthy(html:find("--lr", 1, true))
  end)

  it("is written by a run, with every sample step's grid at the end", function()
    local tmp = util.tmpdir()
    local out = tmp .. "/run"
    local code, _, err = util.run(R.tiny(script, R.dataset(tmp), out,
                                         {"--epochs", "4", "--sample-every", "2"}))
    assert.equal(0, code, err)
    local html = util.read(out .. "/report.html")
    assert_self_contained(html)
    assert.truthy(html:find("epoch 4 of 4, step 16", 1, true))
    assert.equal(3, count(html, "data:image/png;base64,"))        -- epochs 0, 2 and 4
    for _, e in ipairs{0, 2, 4} do
      assert.truthy(html:find(">epoch " .. e .. "</figcaption>", 1, true), e)
    end
    assert.equal(4, count(html, "<polyline"))
    assert.truthy(html:find("seconds per epoch", 1, true))
    assert.truthy(html:find("--sample-every", 1, true))
    -- the grid inside the page is the PNG file, byte for byte
    local grid = util.read(out .. "/samples/epoch_0004.png")
    assert.truthy(html:find(report.base64(grid), 1, true))
    assert.is_nil(util.read(out .. "/report.html.tmp"))
    util.rmdir(tmp)
  end)

  it("renders in headless Chromium: not blank, with the curves in their colours", function()
    local chromium
    for _, name in ipairs{"chromium", "chromium-browser"} do
      if os.execute("command -v " .. name .. " >/dev/null 2>&1") then chromium = name break end
    end
    if not chromium then
      pending("chromium not installed")
      return
    end
    local tmp = util.tmpdir()
    local out = tmp .. "/run"
    local code, _, err = util.run(R.tiny(script, R.dataset(tmp), out,
                                         {"--epochs", "12", "--sample-every", "4"}))
    assert.equal(0, code, err)
    os.execute("mkdir -p " .. util.quote(tmp .. "/shot"))
    local shot = tmp .. "/shot/report.png"
    local ok = os.execute(("timeout 120 %s --headless --no-sandbox --disable-gpu --hide-scrollbars "
      .. "--user-data-dir=%s --window-size=900,900 --screenshot=%s file://%s >/dev/null 2>&1")
      :format(chromium, util.quote(tmp .. "/profile"), util.quote(shot),
              util.quote(out .. "/report.html")))
    assert.truthy(ok and util.read(shot), "chromium wrote no screenshot")
    -- 900x900 loads without resizing; pixels as (3, 900, 900) values in [0, 1]
    local img = gan.images.load(tmp .. "/shot", {size = 900, device = "cpu"})
    util.rmdir(tmp)
    local lo, hi = img:minmax()
    assert.truthy(hi - lo > 0.5, "the screenshot is blank")
    local px = img:totable()[1]
    local near = {}
    local targets = {}
    for i, c in ipairs(report.curves) do
      near[i] = 0
      targets[i] = {tonumber(c.color:sub(2, 3), 16) / 255, tonumber(c.color:sub(4, 5), 16) / 255,
                    tonumber(c.color:sub(6, 7), 16) / 255}
    end
    local white = 0
    local R_, G_, B_ = px[1], px[2], px[3]
    for y = 1, 900 do
      local r, g, b = R_[y], G_[y], B_[y]
      for x = 1, 900 do
        local pr, pg, pb = r[x], g[x], b[x]
        if pr > 0.98 and pg > 0.98 and pb > 0.98 then
          white = white + 1
        else
          for i, t in ipairs(targets) do
            if math.abs(pr - t[1]) < 0.08 and math.abs(pg - t[2]) < 0.08
               and math.abs(pb - t[3]) < 0.08 then
              near[i] = near[i] + 1
            end
          end
        end
      end
    end
    assert.truthy(white < 900 * 900 * 0.99, "the screenshot is all white")
    -- a legend swatch is 16x3 pixels; a curve across the chart is far more
    for i, c in ipairs(report.curves) do
      assert.truthy(near[i] > 300, ("%s: %d pixels of %s"):format(c.label, near[i], c.color))
    end
  end)
end)

describe("the progress bar", function()
  it("writes one finished line to a log, counting steps done before a resume", function()
    local path = util.tmpdir() .. "/bar.txt"
    local f = assert(io.open(path, "w"))
    local bar = gan.progress.bar{label = "epoch 7/8", total = 12, out = f, tty = false,
                                 initial = 12, text = "D 0.500 G 1.000"}
    bar:close()  -- a Ctrl-C on an epoch's last step: nothing left but the epoch's end
    bar = gan.progress.bar{label = "epoch 8/8", total = 4, out = f, tty = false}
    for i = 1, 4 do bar:update(i, ("D %.3f G %.3f"):format(i / 10, i)) end
    bar:close()
    f:close()
    local text = util.read(path)
    assert.truthy(text:find("^epoch 7/8 |##########| 12/12 %[[%d:]+<00:00, 0.0 it/s%] "
                            .. "D 0.500 G 1.000\n"), text)
    assert.truthy(text:find("\nepoch 8/8 |##########| 4/4 %[.-%] D 0.400 G 4.000\n$"), text)
    util.rmdir(path:match("^(.*)/"))
  end)
end)
