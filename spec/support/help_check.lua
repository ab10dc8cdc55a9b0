-- Checks moongrad's help entries (moongrad/help/*.lua): their form, that
-- every public name has one, that every entry names something real, and
-- that every example runs. Used by spec/help_spec.lua, and by hand:
--
--   build/moongrad spec/support/help_check.lua [FILE] [PREFIX ...]
--
-- prints the problems in moongrad/help/FILE.lua (or all files) and the
-- public names under the PREFIXes ("nn.", "mg.Tensor:") that have no entry.
local help = require "moongrad.help"

local M = {}

local fmt = string.format

-- Which entries may exist: every public name, every entry that gives an
-- instance (a class users meet only as objects, such as sched.Scheduler),
-- and the methods of those instances. A method m of entry X's instance is
-- covered by "X:m" or, when X has methods_of = B, by "B:m"; alt maps the
-- first name to the second.
local function known_names(problems)
  local names, alt = {}, {}
  for _, nv in ipairs(help.public_names()) do names[nv[1]] = nv[2] end
  for name, e in pairs(help.entries()) do
    if e.instance then
      if names[name] == nil then names[name] = true end
      local ok, obj = pcall(e.instance)
      if not ok then
        problems[#problems + 1] = fmt("%s: instance() raised: %s", name, tostring(obj))
      else
        local mt = getmetatable(obj)
        local idx = type(mt) == "table" and rawget(mt, "__index")
        -- an nn module's methods are its class's (its __index is a function)
        if type(idx) ~= "table" then
          idx = require("moongrad.nn").is_module(obj) and getmetatable(obj).class or obj
        end
        for _, m in ipairs(help.methods_of(idx)) do
          local own = name .. ":" .. m
          names[own] = idx[m]
          if e.methods_of then
            alt[own] = e.methods_of .. ":" .. m
            alt[alt[own]] = true -- may exist, need not
          end
        end
      end
    end
  end
  return names, alt
end

local function is_str(v) return type(v) == "string" and v:match("%S") ~= nil end

-- Problems with one entry's form.
local function form_problems(name, e, all, out)
  local function bad(why) out[#out + 1] = fmt("%s (help/%s.lua): %s", name, e.file, why) end
  if e.inplace or e.alias then
    local target = e.inplace or e.alias
    if not all[target] then bad("points to " .. target .. ", which has no entry") end
    return
  end
  if type(e.sig) == "table" then
    if #e.sig == 0 then bad("sig is an empty list") end
    for _, s in ipairs(e.sig) do if not is_str(s) then bad("sig has a non-string form") end end
  elseif not is_str(e.sig) then
    bad("no sig (the call as a script writes it)")
  end
  if not is_str(e.doc) then bad("no doc paragraph") end
  if not is_str(e.example) and not is_str(e.norun) then bad("no example") end
  if e.opts ~= nil then
    if type(e.opts) ~= "table" then bad("opts is not a list") else
      for i, o in ipairs(e.opts) do
        if type(o) ~= "table" or not is_str(o[1]) or type(o[2]) ~= "string" or not is_str(o[3]) then
          bad(fmt("opts[%d] is not {name, default, what it does}", i))
        end
      end
    end
  end
  for _, s in ipairs(e.see or {}) do
    if not help.entry(s) then bad("see names " .. s .. ", which has no entry") end
  end
  if e.methods_of and not all[e.methods_of] then bad("methods_of names " .. e.methods_of .. ", which has no entry") end
  if e.group ~= nil and not is_str(e.group) then bad("group is not a string") end
end

-- The globals an example sees: the modules under the names the entries
-- use, and a print that collects instead of writing.
local function example_env(printed)
  local env = { help = help.help }
  for _, m in ipairs(help.MODULES) do env[m[1]] = require(m[2]) end
  env.print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    printed[#printed + 1] = table.concat(parts, "\t")
  end
  return setmetatable(env, { __index = _G })
end

-- Runs one example; returns nil or why it failed, and what it printed.
function M.run_example(name, e)
  local printed = {}
  local env = example_env(printed)
  local fn, err = load(e.example, "=" .. name .. " example", "t", env)
  if not fn then return "does not compile: " .. err end
  local mg = require "moongrad"
  mg.manual_seed(0)
  local grad = mg.is_grad_enabled()
  -- What the library itself prints (help, mg.display) is collected too,
  -- or dropped.
  local stdout, global_print = io.stdout, print
  local devnull = assert(io.open("/dev/null", "w"))
  io.stdout, print = devnull, env.print
  local ok, why = xpcall(fn, debug.traceback)
  io.stdout, print = stdout, global_print
  devnull:close()
  mg.set_grad_enabled(grad)
  if not ok then return "raised: " .. tostring(why) end
  return nil, printed
end

-- check(file or nil, prefixes or nil, run_examples) -> list of problems.
function M.check(file, prefixes, run_examples)
  local problems = {}
  local all = help.entries()
  local names, alt = known_names(problems)
  local sorted = {}
  for name, e in pairs(all) do
    if not file or e.file == file then sorted[#sorted + 1] = name end
  end
  table.sort(sorted)
  for _, name in ipairs(sorted) do
    local e = all[name]
    form_problems(name, e, all, problems)
    if names[name] == nil and alt[name] ~= true then
      problems[#problems + 1] = fmt("%s (help/%s.lua): names nothing public (a typo, or a " ..
                                    "method no entry's instance has?)", name, e.file)
    end
    if run_examples and is_str(e.example) then
      local why = M.run_example(name, e)
      if why then problems[#problems + 1] = fmt("%s (help/%s.lua): the example %s", name, e.file, why) end
    end
  end
  local missing = {}
  for name in pairs(names) do
    local wanted = not prefixes
    for _, p in ipairs(prefixes or {}) do
      if name:sub(1, #p) == p then wanted = true end
    end
    local covered = help.entry(name) or (type(alt[name]) == "string" and help.entry(alt[name]))
    if wanted and not covered then missing[#missing + 1] = name end
  end
  table.sort(missing)
  for _, name in ipairs(missing) do problems[#problems + 1] = name .. ": no help entry" end
  return problems
end

if arg and arg[0] and arg[0]:match("help_check%.lua$") then
  local file = arg[1] ~= "" and arg[1] or nil
  -- Another file half-written by someone else must not hide this one's
  -- problems: it counts as empty, with a warning.
  for _, f in ipairs(help.FILES) do
    if f ~= file then
      local path = package.searchpath("moongrad.help." .. f, package.path)
      local ok, t = pcall(function() return assert(loadfile(path))() end)
      if not ok or type(t) ~= "table" then
        print(("(help/%s.lua does not load just now; counted as empty: %s)"):format(f, tostring(t)))
        package.loaded["moongrad.help." .. f] = {}
      end
    end
  end
  local prefixes = {}
  for i = 2, #arg do prefixes[#prefixes + 1] = arg[i] end
  local problems = M.check(file, #prefixes > 0 and prefixes or nil, true)
  for _, p in ipairs(problems) do print(p) end
  print(#problems .. " problem(s)")
  os.exit(#problems == 0 and 0 or 1)
end

return M
