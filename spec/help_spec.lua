-- help(x): every public name has an entry whose example runs, and help
-- finds the entry from a value, an instance or a name.
local mg = require "moongrad"
local help = require "moongrad.help"
local check = require "support.help_check"
local shell = require "support.shell"
local BUILD = require "support.build"
local nn, F, optim = require "moongrad.nn", require "moongrad.functional", require "moongrad.optim"

describe("help", function()
  -- In a process of its own: examples change global state (moongrad.dist's
  -- start MPI, which must not happen in the process that forks loader
  -- workers later).
  it("has an entry for every public name, every entry names something public, and every example runs", function()
    -- mpi.ENV: under make test-sanitize, Open MPI's own leaks are matched
    -- in its libraries (tools/lsan.supp), as for the mpirun specs
    local out, code = shell.run_merged(require("support.mpi").ENV .. shell.quote(BUILD .. "/moongrad") ..
                                       " spec/support/help_check.lua")
    assert.are.equal(0, code, out)
    assert.are.equal("0", out:match("(%d+) problem%(s%)\n$"), out)
  end)

  it("notices a public name without an entry", function()
    local t = require "moongrad.train"
    t.brand_new_function = function() end
    local ok, problems = pcall(check.check, "optim", { "train." }, false)
    t.brand_new_function = nil
    assert(ok, problems)
    assert.are.same({ "train.brand_new_function: no help entry" }, problems)
  end)

  it("shows a function's signature, description, options and example", function()
    local text = help.text(F.conv2d)
    assert.truthy(text:find("^F%.conv2d%("), text)
    assert.truthy(text:find("\nOptions %(default%):\n  stride = "), text)
    assert.truthy(text:find("\nExample:\n  ", 1, true), text)
  end)

  it("finds a class from the class, an instance, and a tensor method from the tensor's", function()
    assert.truthy(help.text(nn.LSTM):find("^nn%.LSTM%("))
    assert.are.equal("nn.Linear", help.resolve(nn.Linear(2, 3)))
    assert.are.equal("nn.Module:parameters", help.resolve(nn.Linear(2, 3).parameters))
    assert.are.equal("mg.Tensor", help.resolve(mg.zeros(2)))
    assert.are.equal("mg.Tensor:sum", help.resolve(mg.zeros(2).sum))
    assert.truthy(help.text(mg.zeros(2).sum):find("t:sum", 1, true))
    local opt = optim.Adam(nn.Linear(2, 2), { lr = 0.1 })
    assert.is_truthy(help.resolve(opt):match("^optim%."))
    local sched, tune = require "moongrad.sched", require "moongrad.tune"
    assert.are.equal("sched.StepLR", help.resolve(sched.StepLR(opt, { step_size = 1 })))
    assert.are.equal("tune.Study", help.resolve(tune.Study { space = { lr = tune.uniform(0, 1) } }))
  end)

  it("looks names up exactly, by their last part, or lists the matches", function()
    assert.are.equal("F.conv2d", help.resolve("F.conv2d"))
    assert.are.equal("F.conv2d", help.resolve("conv2d"))
    assert.are.equal("nn.Conv2d", help.resolve("Conv2d"))
    assert.are.equal("F.cross_entropy", help.resolve("cross_entropy"))
    local _, why = help.resolve("relu")
    assert.is_nil(_)
    assert.truthy(why:find("matches several names", 1, true), why)
    assert.truthy(why:find("\n  F.relu\n  mg.relu\n  nn.ReLU\n", 1, true), why)
    assert.truthy(select(2, help.resolve("zzzz")):find('nothing is called "zzzz"', 1, true))
  end)

  it("explains nil and values that are not moongrad's instead of raising", function()
    assert.truthy(help.text(nil):find("got nil", 1, true))
    assert.truthy(help.text(print):find("not one of moongrad's", 1, true))
    assert.truthy(help.text(42):find("no help for this number", 1, true))
  end)

  it("lists a module's names by group, with no private names", function()
    local text = help.module_summary(nn)
    assert.truthy(text:find("^nn: "), text)
    assert.truthy(text:find(" LSTM", 1, true), text)
    assert.falsy(text:find("_instance_mt", 1, true), text)
    assert.is_nil(help.module_summary({}))
    assert.truthy(help.text(nn):find("\nNames:\n", 1, true))
  end)
end)
