-- gan/report.lua: OUT/report.html, one self-contained page per run.
--
--   gan.report.write("out/run/report.html", {
--     title = "scripts/strawberry.lua", csv = "out/run/loss.csv",
--     samples = {{epoch = 0, path = "out/run/samples/epoch_0000.png"}, ...},
--     opts = opts, times = {[1] = 2.1, [2] = 2.0}, epoch = 2, epochs = 500,
--     step = 8, device = "cpu", every = 10 [, status = "stopped by Ctrl-C ..."]})
--
-- The page holds the loss curves (D and G losses, D's mean output on real
-- and on fake batches) as inline SVG drawn from loss.csv, the sample grids
-- over time as PNG data URIs, the options and the timings.  Nothing is
-- fetched: no script, no font, no stylesheet from elsewhere, so the file can
-- be mailed or archived alone.  It is written to a temporary file and
-- renamed, so a browser never sees half a page.
local report = {}

-- The curves and their colours (matplotlib's first four, which the report
-- spec looks for in a screenshot).
report.curves = {
  {key = "d_loss", label = "D loss", color = "#1f77b4", chart = 1},
  {key = "g_loss", label = "G loss", color = "#ff7f0e", chart = 1},
  {key = "d_real", label = "D(real)", color = "#2ca02c", chart = 2},
  {key = "d_fake", label = "D(fake)", color = "#d62728", chart = 2},
}

-- At most this many sample grids are embedded: evenly spaced, always the
-- first and the last, so that a 500-epoch run stays a few megabytes.
report.max_grids = 16

-- base64 (RFC 4648), for the data URIs: in C (bindings/lops.c), since the
-- page embeds up to 16 grids of about 500 KB and is rewritten at sample steps
report.base64 = require("gan").C.base64

---------------------------------------------------------------------------
-- loss.csv
---------------------------------------------------------------------------

-- read_csv(path) -> list of rows {column = number}, or {} if there is no file.
function report.read_csv(path)
  local f = io.open(path, "r")
  if not f then return {} end
  local header, rows = nil, {}
  for line in f:lines() do
    local cells = {}
    for c in (line .. ","):gmatch("([^,]*),") do cells[#cells + 1] = c end
    if not header then
      header = cells
    else
      local row = {}
      for i, name in ipairs(header) do row[name] = tonumber(cells[i]) end
      rows[#rows + 1] = row
    end
  end
  f:close()
  return rows
end

---------------------------------------------------------------------------
-- SVG charts
---------------------------------------------------------------------------
local function esc(s)
  return (tostring(s):gsub("[&<>\"]", {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
                                        ['"'] = "&quot;"}))
end
report.escape = esc

local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end

-- Tick values for [lo, hi]: steps of 1, 2 or 5 times a power of ten, about
-- five of them (Heckbert, "Nice numbers for graph labels", Graphics Gems 1990).
local function ticks(lo, hi)
  local raw = (hi - lo) / 5
  local p = 10 ^ math.floor(math.log(raw, 10))
  local step = p
  for _, m in ipairs{2, 5, 10} do
    if raw / step <= 1.5 then break end
    step = p * m
  end
  local list = {}
  for k = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) do
    list[#list + 1] = k * step
  end
  return list
end

local function label(v)
  local s = ("%.4g"):format(v)
  return s == "-0" and "0" or s
end

-- chart{title =, xs = {...}, series = {{label =, color =, values = {...}}},
--       ylo =, yhi = (optional fixed range), width =, height =} -> SVG text
function report.chart(o)
  local W, H = o.width or 880, o.height or 300
  local L, R, T, B = 60, 20, 30, 42
  local pw, ph = W - L - R, H - T - B
  local xs = o.xs
  local xhi = 1
  for _, x in ipairs(xs) do if x > xhi then xhi = x end end
  local ylo, yhi = o.ylo, o.yhi
  if not ylo then
    ylo, yhi = 0, 0
    for _, s in ipairs(o.series) do
      for _, v in ipairs(s.values) do
        if finite(v) then
          if v < ylo then ylo = v end
          if v > yhi then yhi = v end
        end
      end
    end
    if yhi - ylo < 1e-9 then yhi = ylo + 1 end
    yhi = yhi + 0.05 * (yhi - ylo)
  end
  local function px(x) return L + pw * x / xhi end
  local function py(y) return T + ph * (1 - (y - ylo) / (yhi - ylo)) end
  local out = {}
  local function add(fmt, ...) out[#out + 1] = fmt:format(...) end
  add('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
      .. 'role="img" aria-label="%s">', W, H, W, H, esc(o.title))
  add('<rect width="%d" height="%d" fill="#ffffff"/>', W, H)
  add('<text x="%d" y="18" font-size="14" font-weight="bold">%s</text>', L, esc(o.title))
  -- grid and ticks
  for _, y in ipairs(ticks(ylo, yhi)) do
    local Y = py(y)
    add('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e4e4e4"/>', L, Y, L + pw, Y)
    add('<text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="#444">%s</text>',
        L - 6, Y + 4, label(y))
  end
  for _, x in ipairs(ticks(0, xhi)) do
    if x == math.floor(x) then
      local X = px(x)
      add('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#444"/>', X, T + ph, X, T + ph + 5)
      add('<text x="%.1f" y="%d" font-size="11" text-anchor="middle" fill="#444">%s</text>',
          X, T + ph + 18, label(x))
    end
  end
  add('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>', L, T, pw, ph)
  add('<text x="%.1f" y="%d" font-size="12" text-anchor="middle" fill="#444">epoch</text>',
      L + pw / 2, H - 6)
  -- the curves: a polyline per run of finite values, dots when there are few
  for _, s in ipairs(o.series) do
    local pts = {}
    local function flush()
      if #pts > 1 then
        add('<polyline fill="none" stroke="%s" stroke-width="2.5" stroke-linejoin="round" '
            .. 'points="%s"/>', s.color, table.concat(pts, " "))
      end
      pts = {}
    end
    for i, v in ipairs(s.values) do
      if finite(v) and xs[i] then
        pts[#pts + 1] = ("%.1f,%.1f"):format(px(xs[i]), py(math.max(ylo, math.min(yhi, v))))
        if #xs <= 40 then
          add('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>', px(xs[i]),
              py(math.max(ylo, math.min(yhi, v))), s.color)
        end
      else
        flush()
      end
    end
    flush()
  end
  -- legend, top right
  local lx = L + pw - 110 * #o.series
  for i, s in ipairs(o.series) do
    local x = lx + 110 * (i - 1)
    add('<line x1="%d" y1="14" x2="%d" y2="14" stroke="%s" stroke-width="3"/>', x, x + 16, s.color)
    add('<text x="%d" y="18" font-size="12">%s</text>', x + 22, esc(s.label))
  end
  if #xs == 0 then
    add('<text x="%.1f" y="%.1f" font-size="13" text-anchor="middle" fill="#888">'
        .. 'no epoch finished yet</text>', L + pw / 2, T + ph / 2)
  end
  add("</svg>")
  return table.concat(out, "\n")
end

---------------------------------------------------------------------------
-- The page
---------------------------------------------------------------------------
local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Evenly spaced picks from a list, with the first and the last.
local function pick(list, n)
  if #list <= n then return list end
  local out = {}
  for k = 0, n - 1 do out[#out + 1] = list[1 + math.floor(k * (#list - 1) / (n - 1) + 0.5)] end
  return out
end

local function hms(s)
  s = math.floor(s + 0.5)
  return ("%d:%02d:%02d"):format(s // 3600, s % 3600 // 60, s % 60)
end

local function timings(o)
  local list, total, lo, hi = {}, 0, math.huge, 0
  for e = 1, o.epoch or 0 do
    local t = o.times and o.times[e]
    if t then
      list[#list + 1] = t
      total = total + t
      lo, hi = math.min(lo, t), math.max(hi, t)
    end
  end
  local rows = {
    {"epochs", ("%d of %d"):format(o.epoch or 0, o.epochs or 0)},
    {"steps", tostring(o.step or 0)},
    {"device", o.device or "?"},
    {"training time", #list > 0 and ("%s (%.1f s)"):format(hms(total), total) or "-"},
  }
  if #list > 0 then
    rows[#rows + 1] = {"seconds per epoch", ("%.3g mean, %.3g min, %.3g max, %.3g last")
                         :format(total / #list, lo, hi, list[#list])}
    if (o.epochs or 0) > (o.epoch or 0) and not o.status then
      rows[#rows + 1] = {"time left (estimate)", hms(total / #list * (o.epochs - o.epoch))}
    end
  end
  return rows
end

local function kv_table(rows)
  local out = {"<table>"}
  for _, r in ipairs(rows) do
    out[#out + 1] = ("<tr><th>%s</th><td>%s</td></tr>"):format(esc(r[1]), esc(r[2]))
  end
  out[#out + 1] = "</table>"
  return table.concat(out, "\n")
end

local STYLE = [[
body { font-family: sans-serif; margin: 24px; color: #222; background: #fff; max-width: 940px; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
h2 { font-size: 16px; margin: 28px 0 8px 0; border-bottom: 1px solid #ddd; }
.sub { color: #666; font-size: 13px; }
.status { color: #a33; font-size: 14px; margin: 6px 0 0 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { text-align: left; padding: 3px 14px 3px 0; vertical-align: top; }
th { font-weight: normal; color: #666; }
.grids { display: flex; flex-wrap: wrap; gap: 14px; }
figure { margin: 0; }
figure img { image-rendering: pixelated; border: 1px solid #ddd; display: block; }
figcaption { font-size: 12px; color: #666; }
]]

-- PNG width and height, from the IHDR chunk.
local function png_size(data)
  if #data < 24 or data:sub(2, 4) ~= "PNG" then return nil end
  return string.unpack(">I4 I4", data, 17)
end

-- html(o) -> the page, as text (see the header for o's fields).
function report.html(o)
  local rows = report.read_csv(o.csv)
  local xs = {}
  for i, r in ipairs(rows) do xs[i] = r.epoch or i end
  local charts = {}
  for c, spec in ipairs{{title = "Losses"}, {title = "D's mean output", ylo = 0, yhi = 1}} do
    local series = {}
    for _, cv in ipairs(report.curves) do
      if cv.chart == c then
        local values = {}
        for i, r in ipairs(rows) do values[i] = r[cv.key] or 0 / 0 end
        series[#series + 1] = {label = cv.label, color = cv.color, values = values}
      end
    end
    charts[c] = report.chart{title = spec.title, xs = xs, series = series,
                             ylo = spec.ylo, yhi = spec.yhi}
  end
  local grids = {}
  for _, s in ipairs(pick(o.samples or {}, report.max_grids)) do
    local data = read_file(s.path)
    if data then
      local w = png_size(data) or 0
      local scale = w > 0 and w < 300 and math.floor(300 / w) or 1
      grids[#grids + 1] = ('<figure><img alt="epoch %d" width="%d" src="data:image/png;base64,%s">'
        .. '<figcaption>epoch %d</figcaption></figure>'):format(s.epoch, w * scale,
        report.base64(data), s.epoch)
    end
  end
  local opts = {}
  local keys = {}
  for k in pairs(o.opts or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do opts[#opts + 1] = {"--" .. k:gsub("_", "-"), tostring(o.opts[k])} end
  return table.concat({
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    ("<title>%s: epoch %d</title>"):format(esc(o.title or "gan run"), o.epoch or 0),
    "<style>" .. STYLE .. "</style></head><body>",
    ("<h1>%s</h1>"):format(esc(o.title or "gan run")),
    ('<div class="sub">%s: epoch %d of %d, step %d. Rewritten at sample steps (at most '
     .. 'every %g s) and at the end; this one at %s.</div>'):format(esc(o.out or ""),
      o.epoch or 0, o.epochs or 0, o.step or 0, o.every or 0, os.date("%Y-%m-%d %H:%M:%S")),
    o.status and ('<p class="status">%s.</p>'):format(esc(o.status)) or "",
    "<h2>Loss curves</h2>",
    charts[1], charts[2],
    "<h2>Samples (the same fixed noise each time)</h2>",
    '<div class="grids">', table.concat(grids, "\n"), "</div>",
    #grids == 0 and "<p>No sample grid yet.</p>" or "",
    "<h2>Timings</h2>", kv_table(timings(o)),
    "<h2>Options</h2>", kv_table(opts),
    "</body></html>", "",
  }, "\n")
end

-- write(path, o) -> path: the page, replaced atomically: written whole to
-- a temporary file, every error checked (a full disk must not leave a cut
-- page in place of the last good one), then renamed.
function report.write(path, o)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then error(("cannot write report '%s': %s"):format(path, err), 2) end
  local ok, werr = f:write(report.html(o))
  if ok then ok, werr = f:flush() end
  local closed, cerr = f:close()
  if ok and not closed then ok, werr = false, cerr end
  if ok then ok, werr = os.rename(tmp, path) end
  if not ok then
    os.remove(tmp)
    error(("cannot write report '%s': %s"):format(path, werr), 2)
  end
  return path
end

return report
