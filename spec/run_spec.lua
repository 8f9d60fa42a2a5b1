-- A training run as a user sees it, through the gan program: the run
-- folder, exact resume (2 epochs then --resume to 4 == 4 epochs, bit for
-- bit), Ctrl-C, the guards, and scripts/sample.lua on the checkpoints.
local gan = require "gan"
local util = require "support.util"
local R = require "support.run"

local script = util.root .. "/scripts/strawberry.lua"
local sampler = util.root .. "/scripts/sample.lua"

-- Every parameter, running statistic, Adam moment and step count of two
-- checkpoints is identical (gan.equal: the same bytes).
local function assert_same_state(path_a, path_b)
  local a, b = gan.load(path_a), gan.load(path_b)
  assert.equal(a.epoch, b.epoch)
  assert.equal(a.step, b.step)
  assert.equal(a.rng, b.rng)
  local n = 0
  for _, name in ipairs{"G", "D"} do
    local pa, pb = a[name]:parameters(), b[name]:parameters()
    assert.equal(#pa, #pb)
    for i, p in ipairs(pa) do
      assert.is_true(gan.equal(p.value, pb[i].value), ("%s %s differs"):format(name, p.name))
      n = n + 1
    end
    for i, x in ipairs(a[name].buffers and a[name]:buffers() or {}) do
      assert.is_true(gan.equal(x.value, b[name]:buffers()[i].value), name .. " " .. x.name)
      n = n + 1
    end
    local oa, ob = a.optims[name], b.optims[name]
    assert.equal(oa.t, ob.t)
    for i = 1, #oa.m do
      assert.is_true(gan.equal(oa.m[i], ob.m[i]), name .. " moment " .. i)
      assert.is_true(gan.equal(oa.v[i], ob.v[i]), name .. " moment " .. i)
      n = n + 2
    end
  end
  assert.equal(14 + 8 + 6 + 2 * 22, n)  -- 14 + 8 parameters, 6 buffers, 2 moments each
  return a
end

describe("a training run", function()
  local tmp, data
  setup(function()
    tmp = util.tmpdir()
    data = R.dataset(tmp)
  end)
  teardown(function() util.rmdir(tmp) end)

  it("writes its run folder: config.lua, samples, loss.csv, checkpoints, report", function()
    local out = util.tmpdir()
    local code, _, err = util.run(R.tiny(script, data, out, {"--epochs", "4", "--sample-every",
                                                             "2", "--save-every", "3"}))
    assert.equal(0, code, err)
    local cfg = assert(loadfile(out .. "/config.lua", "t", {}))()
    assert.equal(4, cfg.epochs)
    assert.equal(8, cfg.size)
    assert.equal(data, cfg.data)
    assert.equal(2e-4, cfg.lr)
    for _, f in ipairs{"samples/epoch_0000.png", "samples/epoch_0002.png", "samples/epoch_0004.png",
                       "loss.csv", "report.html", "checkpoints/last.ckpt",
                       "checkpoints/epoch_0003.ckpt"} do
      assert.truthy(util.read(out .. "/" .. f), f)
    end
    assert.is_nil(util.read(out .. "/samples/epoch_0001.png"))
    assert.is_nil(util.read(out .. "/checkpoints/epoch_0004.ckpt"))
    -- the last line says where the run's seconds went; the parts add up
    local total, parts, startup = err:match(
      "done: 4 epochs, 16 steps in ([%d.]+) s %((training [^)]*)%) after ([%d.]+) s of start%-up")
    assert.truthy(startup, err)
    local sum = 0
    for name, t in parts:gmatch("(%a+) ([%d.]+) s") do
      assert.truthy(({training = 1, checkpoints = 1, samples = 1, report = 1, log = 1,
                      other = 1})[name], parts)
      sum = sum + tonumber(t)
    end
    -- each part is rounded to 0.1 s, and parts under 0.05 s are left out
    assert.is_true(math.abs(sum - tonumber(total)) <= 0.3, parts)
    assert.equal(4, gan.load(out .. "/checkpoints/last.ckpt").epoch)
    assert.equal(3, gan.load(out .. "/checkpoints/epoch_0003.ckpt").epoch)
    util.rmdir(out)
  end)

  it("--precision tf32 puts the GPU's products on tensor cores; the CPU warns and keeps fp32",
     function()
    local out = util.tmpdir()
    local code, _, err = util.run(R.tiny(script, data, out, {"--epochs", "1", "--device",
                                                             util.device, "--precision", "tf32"}))
    assert.equal(0, code, err)
    if util.device == "cuda" then
      assert.truthy(err:find("per epoch, on cuda in tf32\n", 1, true), err)
    else
      assert.truthy(err:find("--precision tf32: the CPU computes in fp32", 1, true), err)
      assert.truthy(err:find("per epoch, on cpu\n", 1, true), err)
    end
    local cfg = assert(loadfile(out .. "/config.lua", "t", {}))()
    assert.equal("tf32", cfg.precision)  -- and --resume goes on in it
    util.rmdir(out)
    out = util.tmpdir()
    code, _, err = util.run(R.tiny(script, data, out, {"--precision", "bf16"}))
    assert.equal(2, code, err)
    assert.truthy(err:find("--precision must be one of fp32, tf32, not 'bf16'", 1, true), err)
    assert.is_nil(util.read(out .. "/config.lua"))
    util.rmdir(out)
  end)

  it("resumes exactly: 2 epochs then --resume to 4 equal 4 epochs straight", function()
    local straight, resumed = util.tmpdir(), util.tmpdir()
    local code, _, err = util.run(R.tiny(script, data, straight, {"--epochs", "4"}))
    assert.equal(0, code, err)
    code, _, err = util.run(R.tiny(script, data, resumed, {"--epochs", "2"}))
    assert.equal(0, code, err)
    -- only --resume and --epochs: the rest comes from the checkpoint
    code, _, err = util.run({script, "--resume", resumed, "--epochs", "4"})
    assert.equal(0, code, err)
    assert.truthy(err:find("resume: " .. resumed .. "/checkpoints/last.ckpt at epoch 2, step 8",
                           1, true), err)
    assert.falsy(err:find("epoch 1/", 1, true), err)
    local ck = assert_same_state(straight .. "/checkpoints/last.ckpt",
                                 resumed .. "/checkpoints/last.ckpt")
    assert.equal(4, ck.epoch)
    assert.equal(16, ck.step)
    assert.equal(util.read(straight .. "/loss.csv"), util.read(resumed .. "/loss.csv"))
    -- the resumed config.lua has the merged options
    local cfg = assert(loadfile(resumed .. "/config.lua", "t", {}))()
    assert.equal(4, cfg.epochs)
    assert.equal(8, cfg.size)
    -- without the same seed, the runs differ: the check above can fail
    local other = util.tmpdir()
    code = util.run(R.tiny(script, data, other, {"--epochs", "4", "--seed", "4"}))
    assert.equal(0, code)
    local a, b = gan.load(straight .. "/checkpoints/last.ckpt"),
                 gan.load(other .. "/checkpoints/last.ckpt")
    assert.is_false(gan.equal(a.G:parameters()[1].value, b.G:parameters()[1].value))
    for _, d in ipairs{straight, resumed, other} do util.rmdir(d) end
  end)

  it("stops on Ctrl-C after the step with a checkpoint and status 130, and resumes exactly", function()
    local out, straight = util.tmpdir(), util.tmpdir()
    local h = R.background(R.tiny(script, data, out, {"--epochs", "100000",
                                                      "--sample-every", "100000"}))
    finally(function() h:stop() end)
    h:wait_for("epoch 2/")
    h:signal("INT")
    local code, err = h:finish()
    assert.equal(130, code, err)
    local stopped_epoch, stopped_step = err:match("interrupted at epoch (%d+), step (%d+): checkpoint")
    assert.truthy(stopped_epoch, err)
    assert.truthy(err:find("--resume " .. out, 1, true), err)
    -- the checkpoint holds every step done so far, mid-epoch or not
    local ck = gan.load(out .. "/checkpoints/last.ckpt")
    assert.equal(tonumber(stopped_step), ck.step)
    -- the report is rewritten as the run stops (no sample step came), and says so
    local page = util.read(out .. "/report.html")
    assert.truthy(page:find(("stopped by Ctrl-C in epoch %s, at step %s: continue with --resume %s")
                              :format(stopped_epoch, stopped_step, out), 1, true))
    assert.falsy(page:find("time left", 1, true))
    -- finish that epoch and one more; compare with a straight run that long
    local target = tostring(tonumber(stopped_epoch) + 1)
    local c2, _, err2 = util.run({script, "--resume", out, "--epochs", target})
    assert.equal(0, c2, err2)
    assert.falsy(util.read(out .. "/report.html"):find("stopped by Ctrl-C", 1, true))
    local c3, _, err3 = util.run(R.tiny(script, data, straight, {"--epochs", target,
                                                                 "--sample-every", "100000"}))
    assert.equal(0, c3, err3)
    assert_same_state(straight .. "/checkpoints/last.ckpt", out .. "/checkpoints/last.ckpt")
    assert.equal(util.read(straight .. "/loss.csv"), util.read(out .. "/loss.csv"))
    util.rmdir(out)
    util.rmdir(straight)
  end)

  it("refuses to resume from a missing or damaged checkpoint, naming it", function()
    local out = util.tmpdir()
    local code, _, err = util.run({script, "--resume", out})
    assert.equal(1, code)
    assert.truthy(err:find(out .. "/checkpoints/last.ckpt", 1, true), err)
    code = util.run(R.tiny(script, data, out, {"--epochs", "1"}))
    assert.equal(0, code)
    local path = out .. "/checkpoints/last.ckpt"
    util.write(path, util.read(path):sub(1, 1000))
    code, _, err = util.run({script, "--resume", out})
    assert.equal(1, code)
    assert.truthy(err:find("truncated", 1, true), err)
    -- a checkpoint of another model: --size changes every shape
    code = util.run(R.tiny(script, data, out, {"--epochs", "1"}))
    code, _, err = util.run({script, "--resume", out, "--size", "4", "--epochs", "2"})
    assert.equal(1, code)
    assert.truthy(err:find("does not fit", 1, true), err)
    assert.truthy(err:find("in the file but", 1, true), err)
    util.rmdir(out)
    util.rmdir(out .. ".1")
  end)

  -- the run folder, as a user runs things again: a finished tiny run's folder
  local function finished(epochs)
    local out = util.tmpdir()
    local code, _, err = util.run(R.tiny(script, data, out, {"--epochs", tostring(epochs)}))
    assert.equal(0, code, err)
    return out
  end

  it("a new run in a folder that holds one keeps the old one, whole, as OUT.1", function()
    local out = finished(2)
    local ckpt, csv = util.read(out .. "/checkpoints/last.ckpt"), util.read(out .. "/loss.csv")
    -- the same command again, as after a Ctrl-C without --resume
    local code, _, err = util.run(R.tiny(script, data, out .. "/", {"--epochs", "1"}))
    assert.equal(0, code, err)
    assert.truthy(err:find(("--out %s held an earlier run: it is kept as %s.1 (continue it "
      .. "with --resume %s.1)"):format(out, out, out), 1, true), err)
    assert.equal(ckpt, util.read(out .. ".1/checkpoints/last.ckpt"))
    assert.equal(csv, util.read(out .. ".1/loss.csv"))
    assert.equal(1, gan.load(out .. "/checkpoints/last.ckpt").epoch)
    assert.is_nil(util.read(out .. "/samples/epoch_0002.png"))
    -- a third time: OUT.2, and the kept run still resumes
    code, _, err = util.run(R.tiny(script, data, out, {"--epochs", "1"}))
    assert.equal(0, code, err)
    assert.truthy(err:find("kept as " .. out .. ".2", 1, true), err)
    code, _, err = util.run({script, "--resume", out .. ".1", "--epochs", "3"})
    assert.equal(0, code, err)
    assert.equal(3, gan.load(out .. ".1/checkpoints/last.ckpt").epoch)
    for _, d in ipairs{out, out .. ".1", out .. ".2"} do util.rmdir(d) end
  end)

  it("--resume A --out B keeps a run in B aside and carries A's loss.csv; a bare header is no run",
     function()
    local a, b = finished(2), finished(1)
    local code, _, err = util.run({script, "--resume", a, "--out", b, "--epochs", "3"})
    assert.equal(0, code, err)
    assert.truthy(err:find("kept as " .. b .. ".1", 1, true), err)
    assert.equal(1, gan.load(b .. ".1/checkpoints/last.ckpt").epoch)
    local csv = util.read(b .. "/loss.csv")
    assert.equal(util.read(a .. "/loss.csv"), csv:match("^(.-\n2,[^\n]*\n)"))
    assert.truthy(csv:find("\n3,12,", 1, true), csv)
    assert.equal(2, gan.load(a .. "/checkpoints/last.ckpt").epoch)  -- A as it was
    -- a folder whose run failed at its first step: only loss.csv's header
    local c = util.tmpdir()
    util.write(c .. "/loss.csv", "epoch,step,d_loss,g_loss,d_real,d_fake\n")
    code, _, err = util.run(R.tiny(script, data, c, {"--epochs", "1"}))
    assert.equal(0, code, err)
    assert.falsy(err:find("earlier run", 1, true), err)
    for _, d in ipairs{a, b, b .. ".1", c} do util.rmdir(d) end
  end)

  it("a refused run changes nothing in the folder: not config.lua, not the run", function()
    local out = finished(1)
    local code, err
    local cfg, csv = util.read(out .. "/config.lua"), util.read(out .. "/loss.csv")
    local refused = {
      {R.tiny(script, tmp .. "/nope", out, {"--epochs", "1"}), 1, "does not exist"},
      {{script, "--resume", out, "--latent", "50", "--epochs", "2"}, 1, "does not fit"},
      {{script, "--resume", out, "--epochs", "2", "--device", "tpu"}, 2, "--device must be one of"},
      {{script, "--resume", out, "--epochs", "2", "--batch", "0"}, 2, "--batch must be at least 1"},
    }
    for _, c in ipairs(refused) do
      code, _, err = util.run(c[1])
      assert.equal(c[2], code, err)
      assert.truthy(err:find(c[3], 1, true), err)
      assert.falsy(err:find("traceback", 1, true), err)
      assert.equal(cfg, util.read(out .. "/config.lua"))
      assert.equal(csv, util.read(out .. "/loss.csv"))
      assert.is_nil(util.read(out .. ".1/loss.csv"))
    end
    util.rmdir(out)
  end)

  it("--resume takes the run folder, its last.ckpt, or a snapshot going on in a new --out",
     function()
    local out = util.tmpdir()
    local code, _, err = util.run(R.tiny(script, data, out, {"--epochs", "2", "--save-every", "1"}))
    assert.equal(0, code, err)
    local csv = util.read(out .. "/loss.csv")
    -- last.ckpt named: the same as the folder
    code, _, err = util.run({script, "--resume", out .. "/checkpoints/last.ckpt", "--epochs", "3"})
    assert.equal(0, code, err)
    assert.equal(3, gan.load(out .. "/checkpoints/last.ckpt").epoch)
    -- an earlier snapshot would overwrite epochs 2 and 3 in its own folder
    local snap = out .. "/checkpoints/epoch_0001.ckpt"
    code, _, err = util.run({script, "--resume", snap, "--epochs", "3"})
    assert.equal(2, code, err)
    assert.truthy(err:find("give --out DIR, another folder (or --resume " .. out .. ",", 1, true), err)
    -- also when --out names that folder, however it is written
    local rel = out:gsub("^/", "/./") .. "/"
    code, _, err = util.run({script, "--resume", snap, "--out", rel, "--epochs", "3"})
    assert.equal(2, code, err)
    assert.equal(3, gan.load(out .. "/checkpoints/last.ckpt").epoch)
    -- a lone copy of a checkpoint has no run folder: it needs --out
    local lone = tmp .. "/lone.ckpt"
    util.write(lone, util.read(snap))
    code, _, err = util.run({script, "--resume", lone, "--epochs", "3"})
    assert.equal(2, code, err)
    assert.truthy(err:find("a checkpoint file outside a run's checkpoints/ folder", 1, true), err)
    os.remove(lone)
    -- a file that is not a checkpoint says so; a path that is nothing says that
    code, _, err = util.run({script, "--resume", out .. "/loss.csv", "--epochs", "3"})
    assert.equal(1, code, err)
    assert.truthy(err:find("cannot resume: ", 1, true) and err:find("loss.csv", 1, true), err)
    code, _, err = util.run({script, "--resume", out .. "/nothing", "--epochs", "3"})
    assert.equal(1, code, err)
    assert.truthy(err:find("nothing': no such run folder or checkpoint file", 1, true), err)
    -- the run folder itself, written as another path: it goes on there, nothing moved aside
    code, _, err = util.run({script, "--resume", out, "--out", rel, "--epochs", "4"})
    assert.equal(0, code, err)
    assert.is_nil(util.read(out .. ".1/loss.csv"))
    local all = util.read(out .. "/loss.csv")
    assert.truthy(all:find("\n1,4,", 1, true) and all:find("\n4,16,", 1, true), all)
    -- in a new folder it goes on from epoch 1, with the rows up to epoch 1
    local b = util.tmpdir()
    util.rmdir(b)
    code, _, err = util.run({script, "--resume", snap, "--out", b, "--epochs", "2"})
    assert.equal(0, code, err)
    assert.truthy(err:find("resume: " .. snap .. " at epoch 1, step 4", 1, true), err)
    assert.equal(2, gan.load(b .. "/checkpoints/last.ckpt").epoch)
    local rows = util.read(b .. "/loss.csv")
    assert.equal(csv:match("^(.-\n1,[^\n]*\n)"), rows:match("^(.-\n1,[^\n]*\n)"))
    assert.truthy(rows:find("\n2,8,", 1, true), rows)
    assert.falsy(rows:find("\n3,", 1, true), rows)
    -- an empty name ("$DIR" unset) is refused, not taken as / or the default
    for _, opt in ipairs{"--out", "--resume"} do
      code, _, err = util.run({script, opt, "", "--epochs", "1"})
      assert.equal(2, code, err)
      assert.truthy(err:find(opt .. " needs a folder, not an empty name", 1, true), err)
    end
    -- another size or another script: the message says what changed
    code, _, err = util.run({script, "--resume", out, "--size", "4", "--epochs", "5"})
    assert.equal(1, code, err)
    assert.truthy(err:find("what differs from the run: --size 4 (the run's: ", 1, true), err)
    code, _, err = util.run({util.root .. "/scripts/strawberry_dcgan.lua", "--resume", out,
                             "--epochs", "5"})
    assert.equal(1, code, err)
    assert.truthy(err:find("the run was made by " .. script, 1, true), err)
    util.rmdir(out)
    util.rmdir(b)
  end)

  it("--resume of a finished run says there is nothing to train; fewer --epochs is refused",
     function()
    local out = finished(2)
    local csv = util.read(out .. "/loss.csv")
    local code, _, err = util.run({script, "--resume", out})
    assert.equal(0, code, err)
    assert.truthy(err:find("nothing to train: the run in " .. out .. " has done its 2 epochs",
                           1, true), err)
    code, _, err = util.run({script, "--resume", out, "--epochs", "1"})
    assert.equal(2, code, err)
    assert.truthy(err:find("--epochs 1: the run in " .. out .. " has done 2 epochs already",
                           1, true), err)
    assert.equal(csv, util.read(out .. "/loss.csv"))
    -- and going on: the last line counts this session's steps apart
    code, _, err = util.run({script, "--resume", out, "--epochs", "3"})
    assert.equal(0, code, err)
    assert.truthy(err:find("resume: " .. out .. "/checkpoints/last.ckpt at epoch 2, step 8 "
                           .. "(its end)", 1, true), err)
    assert.truthy(err:find("done: 3 epochs, 12 steps (4 of them now) in ", 1, true), err)
    util.rmdir(out)
  end)

  it("trains the seed at --batch 1, where Keras's BatchNorm gives beta (no error)", function()
    local out = util.tmpdir()
    local code, _, err = util.run(R.tiny(script, data, out, {"--epochs", "1", "--batch", "1"}))
    assert.equal(0, code, err)
    assert.truthy(err:find("40 batches of 1", 1, true), err)
    assert.equal(1, gan.load(out .. "/checkpoints/last.ckpt").epoch)
    util.rmdir(out)
  end)
end)

describe("the guards", function()
  -- A minimal script on the shared helpers, whose loop returns the losses
  -- we want: NaN at step 7, or D winning outright.
  local guard = [[
local gan = require "gan"
local train = gan.train
train.loop(function(r)
  local n, mode = 0, r.opts.mode
  return {step = function()
    n = n + 1
    if mode == "nan" and n == 7 then return 0 / 0, 1, 0.5, 0.5 end
    if mode == "dwins" then return 1e-4, 6, 1, 0 end
    if mode == "slow" then                     -- 2 s of Lua per step
      io.stderr:write(("step %d begins\n"):format(n))
      local t = os.clock()
      while os.clock() - t < 2 do end
    end
    return 0.7, 0.7, 0.5, 0.5
  end}
end)
local run = train.start({{"out", "", "run folder"}, {"epochs", 3, ""}, {"sample_every", 1, ""},
                         {"checkpoint_minutes", 0, ""}, {"report_seconds", 10, ""},
                         {"seed", 1, ""}, {"mode", "ok", ""}}, arg, "guard.lua")
train.report_seconds = run.opts.report_seconds
local G = gan.nn.Sequential(gan.nn.Linear(2, 12), gan.nn.Sigmoid())  -- 3x2x2 images
run:fit{models = {G = G}, loader = gan.data.loader(gan.rand(8, 3, 2, 2), 2),
        noise = gan.randn(4, 2)}
print("report pages written: " .. run.reports)
]]
  local dir, path
  setup(function()
    dir = util.tmpdir()
    path = dir .. "/guard.lua"
    util.write(path, guard)
  end)
  teardown(function() util.rmdir(dir) end)

  it("stop on a NaN loss naming the epoch and step, keeping the last good checkpoint", function()
    local out = util.tmpdir()
    local code, _, err = util.run({path, "--out", out, "--mode", "nan"})
    assert.equal(1, code, err)
    assert.truthy(err:find("D loss is NaN at epoch 2, step 7", 1, true), err)
    assert.truthy(err:find("the last good checkpoint is kept: " .. out ..
                           "/checkpoints/last.ckpt (epoch 1)", 1, true), err)
    assert.falsy(err:find("traceback", 1, true), err)
    assert.equal(1, gan.load(out .. "/checkpoints/last.ckpt").epoch)
    util.rmdir(out)
  end)

  it("stop on a NaN loss, and still say that a grid written in the background failed",
     function()
    local out = util.tmpdir()
    local code, _, err = util.run({path, "--out", out, "--mode", "nan"}, nil,
      {GAN_FAULT_WRITE_AFTER = "20", GAN_FAULT_WRITE_MATCH = "epoch_0001.png"})
    assert.equal(1, code, err)
    assert.truthy(err:find("at epoch 2, step 7", 1, true), err)
    assert.truthy(err:find(("cannot write grid '%s/samples/epoch_0001.png': No space left on "
      .. "device"):format(out), 1, true), err)
    util.rmdir(out)
  end)

  it("write a sample step's checkpoint at most once a minute unless told otherwise", function()
    -- --checkpoint-minutes 1 (the programs' default): epoch 1's sample step
    -- comes milliseconds after the start, so its checkpoint is skipped
    local out = util.tmpdir()
    local code, _, err = util.run({path, "--out", out, "--mode", "nan",
                                   "--checkpoint-minutes", "1"})
    assert.equal(1, code, err)
    assert.truthy(err:find("no checkpoint had been written yet", 1, true), err)
    assert.is_nil(util.read(out .. "/checkpoints/last.ckpt"))
    util.rmdir(out)
    -- an explicit --checkpoint-every N is not limited
    out = util.tmpdir()
    code, _, err = util.run({path, "--out", out, "--mode", "nan", "--checkpoint-minutes", "1",
                             "--checkpoint-every", "1"})
    assert.equal(1, code, err)
    assert.truthy(err:find("the last good checkpoint is kept: " .. out ..
                           "/checkpoints/last.ckpt (epoch 1)", 1, true), err)
    util.rmdir(out)
  end)

  it("rewrite the report at a sample step only 10 s after the last time", function()
    -- 3 fast epochs, a grid each: the page at the start and at the end only
    local out = util.tmpdir()
    local code, stdout, err = util.run({path, "--out", out})
    assert.equal(0, code, err)
    assert.equal("report pages written: 2\n", stdout)
    assert.truthy(util.read(out .. "/report.html"):find("epoch 3 of 3", 1, true))
    util.rmdir(out)
    -- with no interval, at each of the 4 sample steps (epochs 0 to 3)
    out = util.tmpdir()
    code, stdout, err = util.run({path, "--out", out, "--report-seconds", "0"})
    assert.equal(0, code, err)
    assert.equal("report pages written: 4\n", stdout)
    util.rmdir(out)
    -- a stop writes the page the skipped sample steps left stale: the NaN
    -- comes in epoch 2, after epoch 1's grid
    out = util.tmpdir()
    code, _, err = util.run({path, "--out", out, "--mode", "nan"})
    assert.equal(1, code, err)
    local html = util.read(out .. "/report.html") or ""
    assert.truthy(html:find("epoch 1 of 3, step", 1, true), html:sub(1, 2000))
    assert.truthy(html:find(">epoch 1</figcaption>", 1, true))
    util.rmdir(out)
  end)

  it("stop at once on a second Ctrl-C, saying so without a traceback", function()
    local out = util.tmpdir()
    local h = R.background({path, "--out", out, "--mode", "slow", "--epochs", "100"})
    finally(function() h:stop() end)
    h:wait_for("step 2 begins")
    h:signal("INT")                            -- the first: stop after this step
    os.execute("sleep 0.3")
    h:signal("INT")                            -- the second, within the same step
    local code, err = h:finish()
    assert.equal(1, code, err)
    assert.truthy(err:find("interrupted twice: stopped at once, without a new checkpoint", 1,
                           true), err)
    assert.falsy(err:find("traceback", 1, true), err)
    assert.falsy(err:find("step 3 begins", 1, true), err)
    util.rmdir(out)
  end)

  it("take one Ctrl-C delivered twice (timeout(1) signals the process and its group) as one",
     function()
    local out = util.tmpdir()
    local _, _, code = os.execute(("timeout --preserve-status -s INT 3 %s %s --out %s "
      .. "--mode slow --epochs 100 2>%s"):format(util.quote(util.bin), util.quote(path),
      util.quote(out), util.quote(out .. "/err")))
    local err = util.read(out .. "/err") or ""
    assert.equal(130, code, err)
    assert.truthy(err:find("interrupted at epoch %d+, step %d+: checkpoint"), err)
    assert.truthy(util.read(out .. "/checkpoints/last.ckpt"), "no checkpoint")
    util.rmdir(out)
  end)

  it("warn once when D's loss stays under 1e-3 for 50 steps", function()
    local out = util.tmpdir()
    local code, _, err = util.run({path, "--out", out, "--mode", "dwins", "--epochs", "20"})
    assert.equal(0, code, err)
    local _, n = err:gsub("warning: D's loss has stayed under 0.001 for 50 steps", "")
    assert.equal(1, n, err)
    assert.truthy(err:find("(epoch 13, step 50)", 1, true), err)
    assert.truthy(err:find("--batch", 1, true), err)
    code, _, err = util.run({path, "--out", out, "--mode", "ok", "--epochs", "20"})
    assert.equal(0, code, err)
    assert.falsy(err:find("warning", 1, true), err)
    util.rmdir(out)
  end)
end)

describe("scripts/sample.lua", function()
  local tmp, ckpt
  setup(function()
    tmp = util.tmpdir()
    local out = tmp .. "/run"
    local code, _, err = util.run(R.tiny(script, R.dataset(tmp), out, {"--epochs", "1"}))
    assert.equal(0, code, err)
    ckpt = out .. "/checkpoints/last.ckpt"
  end)
  teardown(function() util.rmdir(tmp) end)

  local function png_size(path)
    local s = assert(util.read(path), path)
    assert.equal("PNG", s:sub(2, 4))
    local w, h = string.unpack(">I4 I4", s, 17)
    return w, h
  end

  it("writes a grid, one file per image, and interpolation strips", function()
    local code, _, err = util.run({sampler, "--checkpoint", ckpt, "--n", "64", "--out",
                                   tmp .. "/grid.png"})
    assert.equal(0, code, err)
    assert.same({8 * 8 + 7 * 2, 8 * 8 + 7 * 2}, {png_size(tmp .. "/grid.png")})   -- 8x8 of 8px
    code, _, err = util.run({sampler, "--checkpoint", ckpt, "--n", "3", "--out", tmp .. "/each"})
    assert.equal(0, code, err)
    for i = 1, 3 do
      assert.same({8, 8}, {png_size(("%s/each/sample_%04d.png"):format(tmp, i))})
    end
    assert.is_nil(util.read(tmp .. "/each/sample_0004.png"))
    code, _, err = util.run({sampler, "--checkpoint", ckpt, "--n", "2", "--interpolate", "5",
                             "--out", tmp .. "/walk.png"})
    assert.equal(0, code, err)
    assert.same({5 * 8 + 4 * 2, 2 * 8 + 2}, {png_size(tmp .. "/walk.png")})
    -- the same seed gives the same file; another seed another
    code = util.run({sampler, "--checkpoint", ckpt, "--n", "64", "--out", tmp .. "/again.png"})
    assert.equal(0, code)
    assert.equal(util.read(tmp .. "/grid.png"), util.read(tmp .. "/again.png"))
    code = util.run({sampler, "--checkpoint", ckpt, "--n", "64", "--seed", "2",
                     "--out", tmp .. "/other.png"})
    assert.equal(0, code)
    assert.are_not.equal(util.read(tmp .. "/grid.png"), util.read(tmp .. "/other.png"))
  end)

  it("starts each strip at a latent drawn as plain samples draw it", function()
    -- the same seed: strip 1 of length 1 is the first plain sample
    local code = util.run({sampler, "--checkpoint", ckpt, "--n", "1", "--out", tmp .. "/one"})
    assert.equal(0, code)
    code = util.run({sampler, "--checkpoint", ckpt, "--n", "1", "--interpolate", "1",
                     "--out", tmp .. "/strip"})
    assert.equal(0, code)
    assert.equal(util.read(tmp .. "/one/sample_0001.png"), util.read(tmp .. "/strip/strip_0001.png"))
  end)

  it("gives models ready to sample in any REPL with gan.load", function()
    local code, out, err = util.run({}, table.concat({
      ("ck = gan.load(%q)"):format(ckpt),
      "print(ck.epoch, ck.step, ck.G.training, ck.noise:size(1))",
      ("ck:save_grid(%q)"):format(tmp .. "/repl.png"),
      ("gan.images.save_grid(ck.G:forward(gan.randn(4, 100)), %q, {cols = 2})"):format(
        tmp .. "/repl4.png"),
    }, "\n") .. "\n")
    assert.equal(0, code, err)
    -- the REPL prints what save_grid returns: the file names
    assert.equal(("1\t4\tfalse\t10\n%s/repl.png\n%s/repl4.png\n"):format(tmp, tmp), out)
    assert.equal("", err)
    assert.same({5 * 8 + 4 * 2, 2 * 8 + 2}, {png_size(tmp .. "/repl.png")})
    assert.same({2 * 8 + 2, 2 * 8 + 2}, {png_size(tmp .. "/repl4.png")})
  end)

  it("refuses a checkpoint cut to its first 1000 bytes with a non-zero exit", function()
    util.write(tmp .. "/cut.ckpt", util.read(ckpt):sub(1, 1000))
    local code, _, err = util.run({sampler, "--checkpoint", tmp .. "/cut.ckpt", "--out",
                                   tmp .. "/x.png"})
    assert.are_not.equal(0, code)
    assert.truthy(err:find(tmp .. "/cut.ckpt", 1, true), err)
    assert.truthy(err:find("truncated", 1, true), err)
    assert.falsy(err:find("traceback", 1, true), err)
    assert.is_nil(util.read(tmp .. "/x.png"))
    code, _, err = util.run({sampler, "--out", tmp .. "/x.png"})
    assert.equal(2, code)
    assert.truthy(err:find("--checkpoint", 1, true), err)
  end)
end)
