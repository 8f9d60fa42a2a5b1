-- gan.images: loading folders of photos (good, odd and broken files) and
-- writing grids.  Every fixture is made here, in a temporary folder.
local gan = require "gan"
local png = require "support.png"
local util = require "support.util"

-- Runs f with stderr captured by the C warning path: warnings go to the
-- process's stderr, so the spec runs the load in a `gan -e` subprocess
-- where it must read them.
local function load_in_subprocess(dir, size)
  return util.run({"-e", ([[
    local x, skipped = gan.images.load(%q, {size = %d})
    print(x:size(1), skipped)]]):format(dir, size)})
end

describe("gan.images", function()
  local dir

  before_each(function()
    dir = util.tmpdir()
    gan.device(util.device)
  end)
  after_each(function() util.rmdir(dir) end)

  local function solid(path, w, h, channels, depth, value)
    png.write(path, w, h, channels, depth, function() return value end)
  end

  it("loads RGB, grey, RGBA and 16-bit PNGs as RGB in [0, 1]", function()
    solid(dir .. "/a_rgb.png", 4, 4, 3, 8, {255, 0, 0})
    solid(dir .. "/b_grey.png", 4, 4, 1, 8, {51})
    solid(dir .. "/c_rgba_clear.png", 4, 4, 4, 8, {0, 0, 0, 0})     -- transparent: white
    solid(dir .. "/d_rgba_opaque.png", 4, 4, 4, 8, {0, 0, 255, 255})
    solid(dir .. "/e_16bit.png", 4, 4, 3, 16, {65535, 32768, 0})
    local x, skipped = gan.images.load(dir, {size = 4})
    assert.same({5, 3, 4, 4}, x:shape())
    assert.equal(0, skipped)
    local t = x:to("cpu"):totable()           -- t[i][c][y][x]
    local function px(i) return {t[i][1][1][1], t[i][2][1][1], t[i][3][1][1]} end
    local function near(a, b) for c = 1, 3 do assert.is_true(math.abs(a[c] - b[c]) < 1 / 255 + 1e-6) end end
    near(px(1), {1, 0, 0})
    near(px(2), {0.2, 0.2, 0.2})
    near(px(3), {1, 1, 1})
    near(px(4), {0, 0, 1})
    near(px(5), {1, 0.5, 0})
  end)

  it("scales to [-1, 1] on request and resizes to the size asked", function()
    solid(dir .. "/w.png", 8, 6, 3, 8, {255, 255, 255})
    local x = gan.images.load(dir, {size = 3, range = "-1,1"})
    assert.same({1, 3, 3, 3}, x:shape())
    local lo, hi = x:minmax()
    assert.is_true(math.abs(lo - 1) < 1e-5 and math.abs(hi - 1) < 1e-5)
  end)

  it("loads subfolders and skips broken files with a warning naming each", function()
    solid(dir .. "/good.png", 4, 4, 3, 8, {10, 20, 30})
    os.execute("mkdir '" .. dir .. "/sub'")
    solid(dir .. "/sub/grey.png", 4, 4, 1, 8, {100})
    solid(dir .. "/rgba.png", 4, 4, 4, 8, {1, 2, 3, 128})
    local full = png.encode(4, 4, 3, 8, function() return {1, 2, 3} end)
    util.write(dir .. "/truncated.png", full:sub(1, #full // 2))
    util.write(dir .. "/notes.txt", "these are not pixels\n")
    local code, out, err = load_in_subprocess(dir, 8)
    assert.equal(0, code, err)
    assert.equal("3\t2", out:match("^(%S+%s+%S+)"))
    assert.truthy(err:find("truncated.png", 1, true), err)
    assert.truthy(err:find("notes.txt", 1, true), err)
    assert.truthy(err:find("skipped 2", 1, true), err)
  end)

  it("refuses an empty folder and a missing one, naming them", function()
    local code, _, err = util.run({"-e", ("gan.images.load(%q)"):format(dir)})
    assert.equal(1, code)
    assert.truthy(err:find(dir, 1, true), err)
    assert.error_matches(function() gan.images.load(dir .. "/nope") end, "does not exist")
    util.write(dir .. "/only.txt", "text")
    assert.error_matches(function() gan.images.load(dir) end, "no usable image")
  end)

  it("writes a grid that reads back with the same pixels", function()
    gan.seed(3)
    local x = gan.rand(1, 3, 6, 6)
    local grid = dir .. "/grid.png"
    gan.images.save_grid(x, grid, {cols = 1})
    local y = gan.images.load(dir, {size = 6})       -- one image, already 6x6
    assert.is_true(gan.max_abs_diff(x, y) <= 0.5 / 255 + 1e-6)
  end)

  it("lays grids out with 2-pixel gaps, in columns", function()
    local x = gan.zeros(3, 3 * 4 * 4)                -- three black 4x4 images
    local grid = dir .. "/g/grid.png"
    os.execute("mkdir '" .. dir .. "/g'")
    gan.images.save_grid(x, grid, {cols = 2})
    local data = util.read(grid)
    local w, h = string.unpack(">I4 I4", data, 17)
    assert.same({2 * 4 + 2, 2 * 4 + 2}, {w, h})
    -- the gap column is white, the cells black
    local y = gan.images.load(dir .. "/g", {size = 10}):to("cpu"):totable()
    assert.is_true(y[1][1][1][1] < 0.01)                 -- cell (0, 0)
    assert.is_true(y[1][1][1][5] > 0.99)                 -- gap column x = 4
    assert.is_true(y[1][1][10][10] > 0.99)               -- the empty 4th cell
  end)

  it("reports a grid it cannot write", function()
    assert.error_matches(function()
      gan.images.save_grid(gan.zeros(1, 3, 2, 2), dir .. "/no/such/dir/g.png")
    end, "g.png")
    -- the format comes from the name: a .gif is refused, not written as a PNG
    assert.error_matches(function()
      gan.images.save_grid(gan.zeros(1, 3, 2, 2), dir .. "/g.gif")
    end, "g.gif': the format comes from the name's ending")
    assert.error_matches(function() gan.images.save_grid(gan.zeros(1, 3, 2, 2), dir .. "/g.png", 4) end,
      "bad argument #3 to 'save_grid' %(options table expected")
    assert.error_matches(function() gan.images.load(dir, 32) end,
      "bad argument #2 to 'load' %(options table expected, e.g. {size = 64}, got number%)")
  end)

  it("writes a grid as JPEG from its name, which reads back near its pixels", function()
    local x = gan.rand(2, 3, 8, 8, "cpu")
    local path = gan.images.save_grid(x, dir .. "/g.jpg", {cols = 2})
    assert.equal("\xFF\xD8\xFF", util.read(path):sub(1, 3))
    local sub = dir .. "/jpg"
    gan.train.mkdir(sub)
    gan.images.save_grid(x:rows(2, 1), sub .. "/one.jpeg")
    local y = gan.images.load(sub, {size = 8, device = "cpu"})
    local d = y:add(x:rows(2, 1), -1):totable()
    local worst = 0
    for _, c in ipairs(d[1]) do for _, row in ipairs(c) do for _, v in ipairs(row) do
      worst = math.max(worst, math.abs(v))
    end end end
    assert.is_true(worst < 0.5, worst)  -- random pixels are JPEG's worst case
    util.rmdir(sub)
  end)

  it("says which names a grid can be written under", function()
    for _, ok in ipairs{"g.png", "a/b.JPG", "c.jpeg", "d.Bmp"} do
      assert.is_true(gan.images.grid_name(ok), ok)
    end
    for _, no in ipairs{"g.gif", "g", "a.png/b", "png"} do
      assert.is_false(gan.images.grid_name(no), no)
      assert.has_error(function() gan.images.save_grid(gan.rand(1, 3, 4, 4), dir .. "/" .. no) end)
    end
  end)

  it("writes a grid in the background: the same file, once flushed", function()
    gan.seed(4)
    local x = gan.rand(5, 3, 8, 8)
    gan.images.save_grid(x, dir .. "/now.png", {cols = 3})
    gan.images.save_grid(x, dir .. "/later.png", {cols = 3, background = true})
    x:fill(0)  -- the grid was taken before the call returned
    gan.images.flush()
    assert.equal(util.read(dir .. "/now.png"), util.read(dir .. "/later.png"))
    assert.is_true(#util.read(dir .. "/now.png") > 100)
  end)

  it("reports a background grid it cannot write, once, at the flush or the next grid",
     function()
    local x, bad = gan.zeros(1, 3, 2, 2), dir .. "/no/such/dir/bg.png"
    gan.images.save_grid(x, bad, {background = true})
    local ok, err = pcall(gan.images.flush)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("cannot write grid '" .. bad .. "': No such file", 1, true),
                  err)
    gan.images.flush()  -- reported once
    gan.images.save_grid(x, bad, {background = true})
    assert.error_matches(function()
      gan.images.save_grid(x, dir .. "/after.png", {background = true})
    end, "bg.png")
    gan.images.flush()
    assert.truthy(util.read(dir .. "/after.png"))  -- the next grid was still written
  end)

  it("makes the gan command fail when a script's last background grid fails", function()
    -- whether the script returns or calls os.exit with success
    for _, ending in ipairs{"", "os.exit(0)", "os.exit(true, true)"} do
      local code, _, err = util.run({"-e", ("gan.images.save_grid(gan.zeros(1, 3, 2, 2), %q, "
        .. "{background = true}) %s"):format(dir .. "/no/such/dir/last.png", ending)})
      assert.equal(1, code, ending)
      assert.truthy(err:find("cannot write grid '" .. dir .. "/no/such/dir/last.png'", 1, true),
                    err)
    end
    -- a grid that lands leaves os.exit's status alone
    local code = util.run({"-e", ("gan.images.save_grid(gan.zeros(1, 3, 2, 2), %q, "
      .. "{background = true}) os.exit(3)"):format(dir .. "/landed.png")})
    assert.equal(3, code)
    assert.truthy(util.read(dir .. "/landed.png"))
  end)
end)
