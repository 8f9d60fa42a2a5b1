-- gan/train.lua: what every training script shares, so that each script
-- keeps only its model and its loop: the run folder, options and resume,
-- the epoch loop with its guards, checkpoints, sample grids, the report and
-- --watch.
--
-- A script has three parts (scripts/strawberry.lua is the example):
--
--   local gan = require "gan"
--   local train = gan.train
--
--   train.loop(function(r)        -- 1. the loop, FIRST in the file
--     local G, D = r.models.G, r.models.D
--     local function d_step(real) ... end
--     local function g_step() ... end
--     local function step(real)   -- one batch: returns d_loss, g_loss,
--       ...                       --   d_real, d_fake (D's mean outputs),
--     end                         --   numbers or 1-element tensors
--     return {d_step = d_step, g_step = g_step, step = step}
--   end)
--
--   local run = train.start(spec, arg, "scripts/x.lua", about)  -- 2. options
--   local opts = run.opts         -- parsed; on --resume, the checkpoint's
--                                 -- options with the command line's on top
--   ... data, models G and D, optimizers, buffers ...             3. the run
--   run:fit{models = {G = G, D = D}, optims = {G = g_opt, D = d_opt},
--           loader = loader, noise = z_fixed, range = "0,1",
--           ...anything else the loop needs: r.bce, r.z, ...}
--
-- fit calls the loop function with its own argument r (r.opts is the
-- options) and runs epochs: step(batch) for every batch, loss.csv, sample
-- grids every --sample-every epochs with the checkpoint OUT/checkpoints/
-- last.ckpt (at most once a minute: --checkpoint-minutes) and
-- OUT/report.html (at most every train.report_seconds), both always at the
-- end, and epoch_NNNN.ckpt every --save-every.
-- It resumes exactly: the generator's state is saved with the models, so
-- 2 epochs then --resume to 4 equal 4 epochs straight, bit for bit.
--
-- A step's values that are tensors stay on the device: fit queues their
-- read (gan.reader) behind the step and takes it after queueing the next
-- step, so on a GPU the host never waits for the queue to drain.  The bar,
-- loss.csv and the guards see them one step late (with their own step
-- numbers); every value is accounted before a checkpoint or the epoch's end.
--
-- With --watch, fit re-reads the script at each epoch boundary when it has
-- changed, runs it only up to its train.loop call (so nothing above that
-- call may be expensive, and nothing there is rebuilt), and swaps the loop
-- functions in.  An edit that does not load, or whose functions fail, is
-- reported and the previous functions go on.
local gan = require "gan"
local checkpoint = require "gan.checkpoint"
local report = require "gan.report"

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

-- The folder above the one that holds a script, for paths relative to the
-- project: "scripts/x.lua" -> ".", "x.lua" (run from scripts/) -> "..",
-- "/p/scripts/x.lua" -> "/p".
function train.project_root(script)
  local dir = train.script_dir(script)
  if dir == "." then return ".." end
  return dir:match("^(.*)[/\\][^/\\]*$") or "."
end

-- root .. "/" .. rel, without a leading "./": what messages show.
function train.join(root, rel)
  if root == "." then return rel end
  return root .. "/" .. rel
end

-- "1 epoch", "4 epochs" (or the plural given: "batches")
function train.count(n, word, plural)
  return ("%d %s"):format(n, n == 1 and word or plural or word .. "s")
end

-- The photos a script trains on unless told: data/strawberries in the
-- project, else ../shared/data/strawberries beside it; "" if neither.
function train.default_data(script)
  local root = train.project_root(script)
  for _, rel in ipairs{"data/strawberries", "../shared/data/strawberries"} do
    local d = train.join(root, rel)
    if train.exists(d) then return d end
  end
  return ""
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

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Writes a file through a temporary one and a rename: never half written.
-- A failed write (a full disk) leaves the previous file as it was.
function train.write_atomic(path, text)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then error(("cannot write '%s': %s"):format(path, err), 2) end
  local wok, werr = f:write(text)
  local cok, cerr = f:close()
  if not (wok and cok) then
    os.remove(tmp)
    error(("cannot write '%s': %s"):format(path, werr or cerr), 2)
  end
  local ok, rerr = os.rename(tmp, path)
  if not ok then
    os.remove(tmp)
    error(("cannot write '%s': %s"):format(path, rerr), 2)
  end
  return path
end

-- loss.csv, one row per epoch, written and flushed as the run goes.  With
-- 'resume_epoch' the rows of epochs up to it are kept (a resumed run redoes
-- the later ones) and new rows are appended.
local Log = {}
Log.__index = Log

function train.csv(path, columns, resume_epoch)
  local keep = {}
  local header = table.concat(columns, ",")
  if resume_epoch then
    local old = read_file(path) or ""
    local first = true
    for line in old:gmatch("[^\n]+") do
      if first then
        if line ~= header then break end
        first = false
      elseif (tonumber(line:match("^([^,]*)")) or math.huge) <= resume_epoch then
        keep[#keep + 1] = line
      end
    end
  end
  local f, err = io.open(path, "w")
  if not f then error(("cannot write '%s': %s"):format(path, err), 2) end
  local log = setmetatable({f = f, columns = columns, path = path}, Log)
  log:write(header)
  for _, line in ipairs(keep) do log:write(line) end
  return log
end

-- One line, flushed; an error names the file (a full disk shows here).
function Log:write(line)
  local ok, err = self.f:write(line, "\n")
  if ok then ok, err = self.f:flush() end
  if not ok then error(("cannot write '%s': %s"):format(self.path, err), 0) end
end

function Log:row(values)
  local cells = {}
  for i, c in ipairs(self.columns) do
    local v = values[c]
    cells[i] = v == nil and "" or math.type(v) == "integer" and tostring(v)
               or ("%.6g"):format(v)
  end
  self:write(table.concat(cells, ","))
end

function Log:close() self.f:close() end

local function finite(v)
  return v == v and v ~= math.huge and v ~= -math.huge
end
train.finite = finite

-- Stops the run when a loss is NaN or infinite: nothing good comes after.
function train.check_finite(what, v, epoch, step)
  if not finite(v) then
    error(("%s is %s at epoch %d, step %d: training diverged (try a lower --lr)"):format(
      what, tostring(v), epoch, step), 0)
  end
end

-- Average of the values a running sum holds.
local Mean = {}
Mean.__index = Mean
-- The means of an epoch's values; a value the loop does not give (nil at
-- every step: a loop without D(real), say) has no mean (nil), and loss.csv
-- leaves its cell empty rather than write a 0 that reads as a result.
function train.means(keys)
  local m = setmetatable({n = 0, sum = {}, seen = {}}, Mean)
  for _, k in ipairs(keys) do m.sum[k] = 0 end
  return m
end
function Mean:add(values)
  self.n = self.n + 1
  for k, v in pairs(values) do
    self.sum[k] = (self.sum[k] or 0) + v
    self.seen[k] = true
  end
end
function Mean:get(k)
  if not self.seen[k] then return nil end
  return self.n > 0 and self.sum[k] / self.n or 0 / 0
end

---------------------------------------------------------------------------
-- The loop functions and --watch
---------------------------------------------------------------------------
local registered    -- the loop function of the script being run
local reloading     -- while --watch re-runs the script: true, then the new loop function
local RELOADED = setmetatable({}, {__tostring = function() return "train.loop: reloaded" end})

-- train.loop(f): registers the script's loop function f(r) -> {d_step =,
-- g_step =, step =}.  While --watch reloads the script, it takes the new f
-- and stops the script there.
function train.loop(f)
  if type(f) ~= "function" then
    error("bad argument #1 to 'loop' (a function(r) returning {d_step, g_step, step} expected)", 2)
  end
  if reloading then
    reloading = f
    error(RELOADED, 0)
  end
  registered = f
  return f
end

-- The loop functions for r, checked.
local function make_loop(f, r)
  local fns = f(r)
  if type(fns) ~= "table" or type(fns.step) ~= "function" then
    error("the loop function must return a table with a 'step' function", 0)
  end
  return fns
end

-- Runs the script text up to its train.loop call and returns the new loop
-- functions for r, or nil and a message.
local function reload(path, text, r)
  local chunk, err = load(text, "@" .. path, "t", setmetatable({}, {__index = _G}))
  if not chunk then return nil, err end
  reloading = true
  local ok, e = pcall(chunk, table.unpack(_G.arg or {}))
  local f = reloading
  reloading = nil
  if ok then return nil, "the script no longer calls train.loop" end
  if e ~= RELOADED then return nil, tostring(e) end
  local ok2, fns = pcall(make_loop, f, r)
  if not ok2 then return nil, tostring(fns) end
  return fns
end

---------------------------------------------------------------------------
-- Options and the run folder
---------------------------------------------------------------------------

-- The options train.start adds to a script's own (unless it has them).
train.run_options = {
  {"save_every", 0, "also keep OUT/checkpoints/epoch_NNNN.ckpt every N epochs (0: never)", min = 0},
  {"checkpoint_every", -1, "write OUT/checkpoints/last.ckpt every N epochs (-1: at sample "
    .. "steps, see --checkpoint-minutes; 0: only at the end and on Ctrl-C)", min = -1},
  {"checkpoint_minutes", 1.0, "with --checkpoint-every -1, skip a sample step's checkpoint "
    .. "when the last was written less than N minutes ago (0: never skip)", min = 0},
  {"resume", "", "continue the run in folder DIR from its last checkpoint (or from a .ckpt "
    .. "file, in a new --out)", meta = "DIR"},
  {"watch", false, "reload the loop functions when this script changes (at the next epoch)"},
  {"precision", "fp32", "the GPU's matrix products: fp32, or tf32 (tensor cores, about 1e-3 "
    .. "relative; the CPU computes in fp32)", choices = {"fp32", "tf32"}},
}
-- Options of one invocation, never taken from the checkpoint on --resume.
local SESSION = {resume = true, watch = true}

local function say(prog, msg)
  io.stderr:write(prog, ": ", tostring(msg), "\n")
end

local function fail(prog, msg, code)
  say(prog, msg)
  os.exit(code or 1)
end

-- err as a user reads it: without the "file:line: " of the Lua code that
-- raised it.  A Ctrl-C is raised again instead: gan says it, exiting 130.
local function plain(err)
  if tostring(err):find("interrupted!", 1, true) then error(err, 0) end
  return gan.message(err)
end

local Run = {}
Run.__index = Run

local function unslashed(path) return (path:gsub("(.)/+$", "%1")) end

-- The checkpoint that --resume PATH names, and the run folder it is in:
-- PATH/checkpoints/last.ckpt for a run folder PATH; else a checkpoint file:
-- a run's DIR/checkpoints/last.ckpt (the same as DIR), or another file (an
-- epoch_NNNN.ckpt snapshot, a copy), which goes on only in a new --out: in
-- its own folder it would overwrite that folder's later epochs.
-- PATH exists.  Returns the checkpoint's path, the run's folder (nil for a
-- lone file), and why it cannot go on where asked (nil if it can), which
-- the caller says once the file has been read as a checkpoint.  Folders
-- are compared as files ("run", "./run/" and "/abs/run" are one).
local function resume_path(path, out)
  if gan.C.is_dir(path) then return path .. "/checkpoints/last.ckpt", path end
  local dir, name = path:match("^(.-)[/\\]+checkpoints[/\\]+([^/\\]+)$")
  if not dir then
    name = path:match("^checkpoints[/\\]+([^/\\]+)$")
    dir = name and "."
  end
  if dir == "" then dir = "/" end
  if name == "last.ckpt" then return path, dir end
  if out and not (dir and gan.C.same_file(out, dir)) then return path, dir end
  if dir then
    return path, dir, ("--resume %s: an earlier checkpoint of the run in %s goes on in a new "
      .. "run folder (in %s it would overwrite the epochs after it): give --out DIR, another "
      .. "folder (or --resume %s, to go on from the run's last checkpoint)")
      :format(path, dir, dir, dir)
  end
  return path, nil, ("--resume %s: a checkpoint file outside a run's checkpoints/ folder "
    .. "goes on in a new run folder: give --out DIR"):format(path)
end

-- Why a checkpoint may not fit this script, for "cannot resume": options
-- given now that differ from the run's (--size, --width), or another script.
local function resume_differences(meta, opts, given, script)
  local why, names = {}, {}
  local was = meta.opts or {}
  for k in pairs(given) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    if not SESSION[k] and k ~= "out" and k ~= "epochs" and was[k] ~= nil and was[k] ~= opts[k] then
      why[#why + 1] = ("--%s %s (the run's: %s)"):format(k:gsub("_", "-"), tostring(opts[k]),
                                                        tostring(was[k]))
    end
  end
  local by = (meta.extra or {}).script
  local function base(p) return (tostring(p):match("[^/\\]+$")) end
  if by and script and base(by) ~= base(script) then
    why[#why + 1] = ("the run was made by %s, not %s"):format(by, script)
  end
  if #why == 0 then return "" end
  return ("; what differs from the run: %s"):format(table.concat(why, ", "))
end

-- run:fail(err [, code]): "PROG: message" and exit (1 unless told), for a
-- script's own checks (a data folder that does not load, say)
function Run:fail(err, code)
  fail(self.prog, plain(err), code)
end

-- train.start(spec, args, prog, about) -> run, whose run.opts are the options.
-- The spec needs out, epochs, sample_every and seed; device is optional.
-- On --resume DIR the checkpoint DIR/checkpoints/last.ckpt is read (and
-- checked) here: its options are the run's, but those given on the command
-- line win.  Then the generator is seeded and the device selected.  The run
-- folder and OUT/config.lua (the options as resolved) are made by run:fit,
-- once the data and the models are known to be good.
function train.start(spec, args, prog, about)
  if reloading then
    error("train.start ran again while reloading: with --watch, call train.loop above it", 0)
  end
  local t_start = gan.C.clock()  -- start-up: options, data, models, until fit
  args = args or {}
  prog = prog or "script"
  local full, have = {}, {}
  for i, o in ipairs(spec) do
    full[i] = o
    have[o[1]] = true
  end
  for _, k in ipairs{"out", "epochs", "sample_every", "seed"} do
    if not have[k] then error(("train.start: the options need '%s'"):format(k), 2) end
  end
  for _, o in ipairs(train.run_options) do
    if not have[o[1]] then
      full[#full + 1] = o
      have[o[1]] = true
    end
  end
  local opts, given = gan.cli.parse(full, args, prog, about)
  if opts.out then opts.out = unslashed(opts.out) end  -- "out/" -> "out"
  local self = setmetatable({prog = prog, script = args[0], opts = opts, spent = {},
                             t_start = t_start}, Run)
  -- an empty name (--out "$DIR" with DIR unset) would write into / or the
  -- default folder
  for _, k in ipairs{"out", "resume"} do
    if given[k] and opts[k] == "" then
      fail(prog, ("--%s needs a folder, not an empty name"):format(k), 2)
    end
  end
  if opts.resume ~= "" then
    opts.resume = unslashed(opts.resume)
    local f = not gan.C.is_dir(opts.resume) and io.open(opts.resume, "rb")
    if f then f:close() elseif f == nil then
      fail(prog, ("cannot resume: '%s': no such run folder or checkpoint file"):format(opts.resume))
    end
    local path, dir, refused = resume_path(opts.resume, given.out and opts.out)
    local ok, ck = pcall(checkpoint.read, path)
    if not ok then fail(prog, ("cannot resume: %s"):format(ck)) end
    if refused then fail(prog, refused, 2) end
    local merged = {}
    for k, v in pairs(ck.meta.opts or {}) do
      if have[k] and not SESSION[k] then merged[k] = v end
    end
    for k, v in pairs(opts) do
      if given[k] or SESSION[k] or merged[k] == nil then merged[k] = v end
    end
    if not given.out then merged.out = dir or train.script_dir(path) end
    -- the folder of the run it continues (none for a lone checkpoint file)
    self.opts, self.resume_ck, self.resumed, self.resume_dir = merged, ck, true, dir
    self.resume_why = resume_differences(ck.meta, merged, given, args[0])
    -- the epoch as "interrupted at epoch E" named it: the one in progress
    local done, partial = ck.meta.epoch, (ck.meta.extra or {}).partial
    io.stderr:write(("resume: %s at epoch %d, step %d (%s)\n"):format(path,
      partial and done + 1 or done, ck.meta.step, partial and "part way" or "its end"))
    if given.epochs and merged.epochs < done then
      fail(prog, ("--epochs %d: the run in %s has done %s already (give more "
        .. "to train on)"):format(merged.epochs, dir or path, train.count(done, "epoch")), 2)
    end
    if merged.epochs <= done then  -- before the script loads photos and models
      io.stderr:write(("nothing to train: the run in %s has done its %s (give "
        .. "--epochs N, more than %d, to train on)\n"):format(dir or path,
        train.count(done, "epoch"), done))
      os.exit(0)
    end
  end
  opts = self.opts
  gan.seed(opts.seed)
  if opts.device then
    local ok, err = pcall(gan.device, opts.device)
    if not ok then fail(prog, ("--device %s: %s"):format(opts.device, plain(err))) end
  end
  if opts.precision == "tf32" and gan.device() ~= "cuda" then
    say(prog, "--precision tf32: the CPU computes in fp32 (tf32 is for the GPU's products)")
  else
    local ok, err = pcall(gan.precision, opts.precision)
    if not ok then fail(prog, ("--precision %s: %s"):format(opts.precision, plain(err))) end
  end
  return self
end

-- A folder holds a run when it has a checkpoint, or a loss.csv with a row
-- (a run that failed at its first step left only the header: nothing to keep).
local function holds_run(out)
  local f = io.open(out .. "/checkpoints/last.ckpt", "rb")
  if f then
    f:close()
    return true
  end
  local csv = read_file(out .. "/loss.csv") or ""
  return csv:find("\n[^\n]", 1) ~= nil
end

-- A new run (not --resume) in a folder that holds an earlier one (its
-- loss.csv or last checkpoint) moves that one aside, whole, to OUT.1 (or
-- OUT.2, ...) and says so: running the same command twice, or again after
-- Ctrl-C without --resume, loses nothing.
function Run:keep_earlier_run()
  local out = unslashed(self.opts.out)
  if not holds_run(out) then return end
  local n, to = 0, nil
  repeat
    n = n + 1
    to = ("%s.%d"):format(out, n)
    local g = io.open(to, "rb")  -- a file or a folder of that name
    if g then g:close() end
  until not g and not gan.C.is_dir(to)
  local ok, err = os.rename(out, to)
  if not ok then
    fail(self.prog, ("--out %s holds an earlier run, which could not be moved aside to %s "
      .. "(%s): continue it with --resume %s, or give another --out"):format(out, to, err, out))
  end
  say(self.prog, ("--out %s held an earlier run: it is kept as %s (continue it with "
    .. "--resume %s)"):format(out, to, to))
end

-- The run folder and OUT/config.lua, once the data, the models and any
-- checkpoint have been checked: a run refused before this changes nothing.
-- A resume into another --out (--resume A --out B) is a new folder too: a
-- run in B is kept aside, and B starts with A's loss.csv.
function Run:make_folder()
  local opts = self.opts
  local elsewhere = self.resumed and not (self.resume_dir and gan.C.same_file(opts.out,
                                                                              self.resume_dir))
  -- the rows so far, read before a run in --out is moved aside
  local csv = elsewhere and self.resume_dir and read_file(self.resume_dir .. "/loss.csv")
  if not self.resumed or elsewhere then self:keep_earlier_run() end
  local ok, err = pcall(function()
    train.mkdir(opts.out .. "/samples")
    train.mkdir(opts.out .. "/checkpoints")
    train.write_atomic(opts.out .. "/config.lua", "-- the options of this run, as resolved\n"
                       .. "return " .. checkpoint.serialize(opts) .. "\n")
    if csv then train.write_atomic(opts.out .. "/loss.csv", csv) end
  end)
  if not ok then
    fail(self.prog, ("--out %s: %s"):format(opts.out, plain(err)))
  end
end

---------------------------------------------------------------------------
-- The run
---------------------------------------------------------------------------
local LOSS_COLUMNS = {"epoch", "step", "d_loss", "g_loss", "d_real", "d_fake"}

-- The sample grid of the fixed noise for an epoch: G in evaluation mode
-- (or r.generate(noise) when the script gives one).
function Run:sample(epoch)
  local r = self.r
  local G = r.models.G
  local was = G and G.training
  if G then G:evaluate() end
  local x = r.generate and r.generate(r.noise) or G:forward(r.noise)
  local path = ("%s/samples/epoch_%04d.png"):format(self.opts.out, epoch)
  -- the PNG is encoded, fsync'ed and renamed on a thread while training
  -- goes on: about 90 ms at 128x128 (bench/sample_step.lua), which the 51
  -- sample steps of a run of seconds on a GPU would otherwise wait for; a
  -- failure shows at the next grid or flush
  gan.images.save_grid(x, path, {cols = train.grid_cols(x:size(1)), range = r.range,
                                 background = true})
  if was then G:train() end
  return path
end

-- OUT/checkpoints/last.ckpt (and epoch_NNNN.ckpt if 'keep'), from the
-- live state; st holds epoch, step, times and, mid-epoch, partial.
function Run:save(st, keep)
  local r, dir = self.r, self.opts.out .. "/checkpoints"
  local state = {
    models = r.models, optims = r.optims, noise = r.noise, epoch = st.epoch,
    step = st.step, opts = self.opts, range = r.range,
    extra = {times = st.times, partial = st.partial, script = self.script},
  }
  local path = dir .. "/last.ckpt"
  checkpoint.save(path, state)
  self.saved = {path = path, epoch = st.epoch, at = gan.C.clock()}
  if keep then
    local kept = ("%s/epoch_%04d.ckpt"):format(dir, st.epoch)
    -- a second name for the same data; a copy where links do not work
    if gan.C.hardlink(path, kept .. ".tmp") and os.rename(kept .. ".tmp", kept) then return end
    os.remove(kept .. ".tmp")
    checkpoint.save(kept, state)
  end
end

-- Runs f(...), which writes a file of the run (a checkpoint, a sample grid,
-- the report, loss.csv).  A failure (a full disk, say) stops the run with
-- one line naming the file and the last checkpoint, which a failed write
-- leaves whole (every writer goes through a temporary file and a rename).
function Run:writing(f, ...)
  local t = gan.C.clock()
  local ok, err = pcall(f, ...)
  local what = self.WRITES[f] or "other"
  self.spent[what] = (self.spent[what] or 0) + gan.C.clock() - t
  if ok then return end
  err = plain(err)  -- (a second Ctrl-C is raised again)
  fail(self.prog, ("%s; %s"):format(err, self:kept_text()))
end

-- What a run that stops leaves to go on from.
function Run:kept_text()
  return self.saved and ("the last checkpoint is kept: %s (epoch %d)")
                          :format(self.saved.path, self.saved.epoch)
         or "no checkpoint had been written yet"
end

-- What Run:writing's time counts under (anything else: "other"), and the
-- run's last line's account of where its seconds went: "training T1 s,
-- checkpoints T2 s, samples T3 s, ..." (parts under 50 ms are left out).
local SPENT = {"checkpoints", "samples", "report", "log", "other"}

function Run:spent_text(total)
  local parts, rest = {}, total
  for _, k in ipairs(SPENT) do
    local t = self.spent[k] or 0
    rest = rest - t
    if t >= 0.05 then parts[#parts + 1] = ("%s %.1f s"):format(k, t) end
  end
  table.insert(parts, 1, ("training %.1f s"):format(rest))
  return table.concat(parts, ", ")
end

-- report.html is rewritten at a sample step only when this many seconds have
-- passed since the last time, and always at the run's end and on Ctrl-C
-- (saying where it stopped), and on a diverged loss when a sample step
-- skipped it: a page of 16
-- grids of 500 KB takes about 50 ms to write, which a run of seconds on a
-- GPU would otherwise pay at each of its 51 sample steps.
train.report_seconds = 10

function Run:write_report(st, status)
  -- the page embeds the grids, so the last must be on disk; one that could
  -- not be written is left out of the page, then raised
  local grids_ok, grids_err = pcall(gan.images.flush)
  self.reported_at, self.report_stale = gan.C.clock(), false
  self.reports = (self.reports or 0) + 1  -- pages written by this process
  local out, samples = self.opts.out, {}
  for e = 0, st.epoch do
    local p = ("%s/samples/epoch_%04d.png"):format(out, e)
    local f = io.open(p, "rb")
    if f then
      f:close()
      samples[#samples + 1] = {epoch = e, path = p}
    end
  end
  report.write(out .. "/report.html", {
    title = self.prog, out = out, csv = out .. "/loss.csv", samples = samples,
    opts = self.opts, times = st.times, epoch = st.epoch, epochs = self.opts.epochs,
    step = st.step, device = gan.device(), every = train.report_seconds, status = status,
  })
  if not grids_ok then error(grids_err, 0) end
end

Run.WRITES = {[Run.save] = "checkpoints", [Run.sample] = "samples",
              [gan.images.flush] = "samples", [Run.write_report] = "report",
              [Log.row] = "log"}

-- Runs step(real) and starts the read of its values on rd (which checks
-- them: numbers, nils or 1-element tensors).  An error of step is raised,
-- with its traceback (the line of the loop); a read that cannot start
-- (values of the wrong kind, or the GPU's failure found when the read is
-- queued) is returned as a message.
local function read_step(rd, step, real)
  local ok, err = pcall(rd.start, rd, step(real))
  if ok then return nil end
  if tostring(err):find("interrupted!", 1, true) then error(err, 0) end
  return ("the loop's step: %s"):format((tostring(err):gsub("^.-reader:start: ", "")))
end

-- One step through the loop functions, its values read into rd.  A
-- reloaded loop that fails, or returns values that cannot be read, is
-- reported and replaced by the previous one, which redoes the batch.  A
-- read that cannot start stops the run with one line (a traceback would
-- show only this file) and the last checkpoint, which it leaves whole.
function Run:step(real, rd)
  if self.previous then
    local ok, err = pcall(read_step, rd, self.fns.step, real)
    if ok and not err then return end
    if tostring(err):find("interrupted!", 1, true) then error(err, 0) end  -- a second Ctrl-C
    io.stderr:write(("watch: the reloaded loop failed: %s; the previous loop runs again\n")
      :format(tostring(err)))
    self.fns, self.previous = self.previous, nil
  end
  local err = read_step(rd, self.fns.step, real)
  if not err then return end
  if self.bar then self.bar:close() end
  fail(self.prog, ("%s; %s"):format(err, self:kept_text()))
end

-- At an epoch boundary: if the script changed, reload its loop functions.
function Run:watch_script(epoch)
  local w = self.watch
  local mt = gan.C.mtime(w.path)
  if not mt or mt == w.mtime then return end
  w.mtime = mt
  local text = read_file(w.path)
  if not text or text == w.text then return end
  w.text = text
  local fns, err = reload(w.path, text, self.r)
  if not fns then
    io.stderr:write(("watch: %s changed but cannot be used: %s; the previous loop keeps running\n")
      :format(w.path, err))
    return
  end
  self.previous, self.fns = self.fns, fns
  local names = {}
  for k, v in pairs(fns) do
    if type(v) == "function" then names[#names + 1] = k end
  end
  table.sort(names)
  io.stderr:write(("watch: %s changed: %s reloaded before epoch %d "
                   .. "(models, optimizers and data kept)\n"):format(w.path,
                   table.concat(names, ", "), epoch))
end

-- The D-wins guard: one warning when D's loss stays under 1e-3 for 50 steps.
local D_WINS_LOSS, D_WINS_STEPS = 1e-3, 50

-- run:fit(r): trains; see the header.  Returns the final state
-- {epoch =, step =, times =}.
function Run:fit(r)
  local opts = self.opts
  if type(r) ~= "table" or type(r.models) ~= "table" or not r.loader or not r.noise then
    error("bad argument to 'fit' (a table with models, optims, loader and noise expected)", 2)
  end
  if not registered then
    error("fit: the script has no loop: call train.loop(function(r) ... end) first", 2)
  end
  r.opts = r.opts or opts
  r.optims = r.optims or {}
  self.r = r
  local out, prog = opts.out, self.prog
  local st = {epoch = 0, step = 0, times = {}}
  local ck = self.resume_ck
  if ck then
    local ok, err = pcall(checkpoint.restore, ck, {models = r.models, optims = r.optims,
                                                   noise = r.noise})
    if not ok then fail(prog, ("cannot resume: %s%s"):format(err, self.resume_why or "")) end
    local extra = ck.meta.extra or {}
    st.epoch, st.step = ck.meta.epoch, ck.meta.step
    st.times, st.partial = extra.times or {}, extra.partial
    st.rng = ck.meta.rng
    self.saved = {path = ck.path, epoch = st.epoch}
    self.resume_ck, ck.tensors = nil, nil
    collectgarbage()  -- the file's copy of every tensor, now in the models
  end
  self:make_folder()
  local first_step = st.step
  local log
  self:writing(function() log = train.csv(out .. "/loss.csv", LOSS_COLUMNS, ck and st.epoch) end)
  self.fns = make_loop(registered, r)
  if opts.watch then
    if not self.script then error("fit: --watch needs the script's path (arg[0])", 2) end
    self.watch = {path = self.script, mtime = gan.C.mtime(self.script),
                  text = read_file(self.script)}
  end
  if not ck then self:writing(self.sample, self, 0) end
  -- the page from the start: a resumed run's said where it had stopped
  self:writing(self.write_report, self, st)

  if gan.defer_interrupts then gan.defer_interrupts(true) end  -- Ctrl-C stops between steps
  -- the generator goes on from the checkpoint, after everything that drew
  -- at startup (initialisation, noise) has been replaced
  if st.rng then gan.rng_state(st.rng) end
  local t_run, low, warned = gan.C.clock(), 0, false
  local startup = t_run - (self.t_start or t_run)
  self.spent = {}  -- seconds in each kind of Run:writing, for the last line
  local steps = r.loader.steps
  local readers = {gan.reader(), gan.reader()}
  for epoch = st.epoch + 1, opts.epochs do
    if self.watch then self:watch_script(epoch) end
    local partial = st.partial
    st.partial = nil
    -- the generator's state before the shuffle: saved on Ctrl-C, so that a
    -- resume redraws the same permutation
    local rng_epoch = partial and partial.rng_epoch or gan.rng_state()
    gan.rng_state(rng_epoch)
    local batches = r.loader:batches()
    local m = train.means{"d_loss", "g_loss", "d_real", "d_fake"}
    local t0 = gan.C.clock()
    if partial then  -- the rest of an interrupted epoch
      gan.rng_state(partial.rng)
      for _ = 1, partial.batch do batches() end
      m.n, m.sum, t0 = partial.n, partial.sum, t0 - partial.seconds
      m.seen = partial.seen or {d_loss = true, g_loss = true, d_real = true, d_fake = true}
    end
    -- the epoch's means so far (as Keras's bar shows): at its end, loss.csv's row
    local function means() return ("D %.3f G %.3f"):format(m:get("d_loss"), m:get("g_loss")) end
    local bar = gan.progress.bar{label = ("epoch %d/%d"):format(epoch, opts.epochs), total = steps,
      initial = partial and partial.batch or 0, text = partial and m.n > 0 and means()}
    self.bar = bar
    -- What step i returned, read: the guards, the means, the bar.
    local function account(rd, i, step)
      local d_loss, g_loss, d_real, d_fake = rd:values()
      if d_loss == nil or g_loss == nil then
        bar:close()
        fail(prog, ("the loop's step returned no %s (it returns D's loss, G's loss and, "
          .. "if it has them, D(real) and D(fake)); %s"):format(
          d_loss == nil and "D loss (value #1)" or "G loss (value #2)", self:kept_text()))
      end
      local bad = not finite(d_loss) and "D loss" or not finite(g_loss) and "G loss"
      if bad then
        bar:close()
        if self.report_stale then  -- its grids; a grid's failure is still said
          local ok, err = pcall(self.write_report, self, st)
          if not ok then say(prog, err) end
        end
        local kept = self.saved and ("the last good checkpoint is kept: %s (epoch %d)")
                       :format(self.saved.path, self.saved.epoch)
                     or "no checkpoint had been written yet"
        local v = bad == "D loss" and d_loss or g_loss
        fail(prog, ("%s is %s at epoch %d, step %d: training diverged (try a lower --lr); %s")
          :format(bad, v ~= v and "NaN" or tostring(v), epoch, step, kept))
      end
      low = d_loss < D_WINS_LOSS and low + 1 or 0
      if low >= D_WINS_STEPS and not warned then
        warned = true
        io.stderr:write(bar.tty and "\n" or "", ("warning: D's loss has stayed under %g for %d "
          .. "steps (epoch %d, step %d): D wins outright and G learns nothing. Try a larger "
          .. "--batch (BatchNorm needs more than 1 image), a lower --lr for D, or label "
          .. "smoothing.\n"):format(D_WINS_LOSS, D_WINS_STEPS, epoch, step))
      end
      m:add{d_loss = d_loss, g_loss = g_loss, d_real = d_real, d_fake = d_fake}
      bar:update(i, means())
    end
    -- The values of a step may be tensors left on the device: their read is
    -- queued behind the step, and the previous step's is waited for, so the
    -- GPU always has a step queued.  Numbers (and the CPU) are read at once.
    local waiting, wait_i, wait_step   -- a reader not yet accounted
    for i, real in batches do
      local rd = waiting == readers[1] and readers[2] or readers[1]
      self:step(real, rd)
      st.step = st.step + 1
      if waiting then account(waiting, wait_i, wait_step) end
      if rd:ready() then
        waiting = nil
        account(rd, i, st.step)
      else
        waiting, wait_i, wait_step = rd, i, st.step
      end
      if gan.interrupted and gan.interrupted() then
        if waiting then account(waiting, wait_i, wait_step) end
        bar:close()
        st.epoch = epoch - 1
        st.partial = {batch = i, rng_epoch = rng_epoch, rng = gan.rng_state(), n = m.n,
                      sum = m.sum, seen = m.seen, seconds = gan.C.clock() - t0}
        self:writing(self.save, self, st)
        -- the page as the run stops: the epochs since the last sample step too
        self:writing(self.write_report, self, st, ("stopped by Ctrl-C in epoch %d, at step %d: "
          .. "continue with --resume %s"):format(epoch, st.step, out))
        self:writing(gan.images.flush)
        io.stderr:write(("interrupted at epoch %d, step %d: checkpoint %s written; "
                         .. "continue with --resume %s\n"):format(epoch, st.step,
                         self.saved.path, out))
        os.exit(130)
      end
    end
    if waiting then account(waiting, wait_i, wait_step) end
    bar:close()
    st.times[epoch] = gan.C.clock() - t0
    st.epoch = epoch
    self:writing(log.row, log, {epoch = epoch, step = st.step, d_loss = m:get("d_loss"),
      g_loss = m:get("g_loss"), d_real = m:get("d_real"), d_fake = m:get("d_fake")})
    local sample_now = epoch % opts.sample_every == 0 or epoch == opts.epochs
    local keep = (opts.save_every or 0) > 0 and epoch % opts.save_every == 0
    -- -1: at sample steps, at most once every checkpoint_minutes (a 500-epoch
    -- run of the seed on a GPU would otherwise spend most of its time
    -- writing 50 checkpoints of 1.2 GB)
    local every = opts.checkpoint_every or -1
    local since = gan.C.clock() - (self.saved and self.saved.at or t_run)
    local ckpt_now = epoch == opts.epochs
      or (every < 0 and sample_now and since >= 60 * (opts.checkpoint_minutes or 0))
      or (every > 0 and epoch % every == 0)
    if ckpt_now or keep then self:writing(self.save, self, st, keep) end
    if sample_now then
      self:writing(self.sample, self, epoch)
      if epoch == opts.epochs or gan.C.clock() - (self.reported_at or 0) >= train.report_seconds then
        self:writing(self.write_report, self, st)
      else
        self.report_stale = true  -- written when the run ends or stops
      end
    end
  end
  self:writing(gan.images.flush)
  log:close()
  local total = gan.C.clock() - t_run
  -- on --resume, the steps of this session are the ones the time is for
  local now = st.step - first_step
  io.stderr:write(("done: %s, %s%s in %.1f s (%s) after %.1f s of start-up; "
    .. "samples in %s/samples, report %s/report.html\n"):format(
    train.count(st.epoch, "epoch"), train.count(st.step, "step"),
    now ~= st.step and (" (%d of them now)"):format(now) or "", total,
    self:spent_text(total), startup, out, out))
  -- only now: a Ctrl-C or SIGTERM after the last step finds the run done,
  -- not a process killed before its last line
  if gan.defer_interrupts then gan.defer_interrupts(false) end
  return st
end

return train
