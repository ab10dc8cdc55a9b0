-- moongrad.tune.report: what a study shows of itself. The methods here
-- join tune.Study's (study.lua copies them in): the line printed for each
-- finished trial, study:leaderboard(), study:plot() and study:write_csv().
-- They read the study's records and never change them.
local util = require "moongrad.util"
local store = require "moongrad.tune.store"
local type, ipairs, tostring, print = type, ipairs, tostring, print
local fmt, concat, sort, floor, max, min = string.format, table.concat, table.sort, math.floor,
  math.max, math.min

local Study = {}  -- the methods, copied into tune.Study

-- A parameter's value as the trial lines and the leaderboard show it.
local function value_text(v)
  if type(v) == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    return fmt("%.4g", v)
  end
  return tostring(v)
end

-- "lr=0.01 width=128"
function Study:_params_text(params)
  local parts = {}
  for _, name in ipairs(self:param_names()) do
    if params[name] ~= nil then parts[#parts + 1] = name .. "=" .. value_text(params[name]) end
  end
  return concat(parts, " ")
end

function Study:_print_trial(rec)
  local what
  if rec.state == "complete" and rec.values then
    local parts = {}
    for k, v in ipairs(rec.values) do parts[k] = fmt("%.6g", v) end
    what = "values " .. concat(parts, ", ")
  elseif rec.state == "complete" then what = "value " .. fmt("%.6g", rec.value)
  elseif rec.state == "pruned" then
    what = fmt("pruned at step %s", rec.intermediate[#rec.intermediate] and
               tostring(rec.intermediate[#rec.intermediate][1]) or "?")
  else what = "failed: " .. tostring(rec.error):gsub("\n.*", "") end
  local of = self._run.unbounded and "" or "/" .. self._run.trials
  local tail = ""
  if self.directions then
    tail = fmt("  %d on the Pareto front", #self:best_trials())
  else
    local best = self:best()
    tail = best and fmt("  best %.6g (trial %d)", best.value, best.number) or ""
  end
  print(fmt("trial %d%s %s  %s  (%.1f s)%s", rec.number, of, what,
            self:_params_text(rec.params), rec.seconds, tail))
  io.stdout:flush()
end

-- study:leaderboard{top = 10} --> text: the best complete trials, then a
-- line counting pruned and failed ones. With directions: the Pareto front,
-- by the first objective.
function Study:leaderboard(opts)
  local o = util.check_options(opts, "study:leaderboard", {top = true}, 2)
  local top = 10
  if o.top ~= nil then
    if type(o.top) ~= "number" or o.top ~= floor(o.top) or o.top < 1 then
      error(fmt("study:leaderboard: top must be an integer >= 1, got %s", tostring(o.top)), 2)
    end
    top = floor(o.top)
  end
  local done = {}
  if self.directions then
    done = self:best_trials()
    sort(done, function(a, b)
      if a.values[1] ~= b.values[1] then return self.signs[1] * a.values[1] < self.signs[1] * b.values[1] end
      return a.number < b.number
    end)
  else
    for _, r in ipairs(self:trials()) do
      if r.state == "complete" then done[#done + 1] = r end
    end
    sort(done, function(a, b)
      if a.value ~= b.value then return self.sign * a.value < self.sign * b.value end
      return a.number < b.number
    end)
  end
  local head = {"rank", "trial"}
  if self.directions then
    for k in ipairs(self.directions) do head[#head + 1] = "value " .. k end
  else
    head[#head + 1] = "value"
  end
  local names = self:param_names()
  for _, n in ipairs(names) do head[#head + 1] = n end
  head[#head + 1] = "seconds"
  local rows = {head}
  for i = 1, min(top, #done) do
    local r = done[i]
    local row = {tostring(i), tostring(r.number)}
    for _, v in ipairs(r.values or {r.value}) do row[#row + 1] = fmt("%.6g", v) end
    for _, n in ipairs(names) do
      row[#row + 1] = r.params[n] == nil and "-" or value_text(r.params[n])
    end
    row[#row + 1] = fmt("%.1f", r.seconds or 0)
    rows[#rows + 1] = row
  end
  local width = {}
  for _, row in ipairs(rows) do
    for j, cell in ipairs(row) do width[j] = max(width[j] or 0, #cell) end
  end
  local c = self:counts()
  local lines = {fmt("%s%s: %d trials (%d complete, %d pruned, %d failed), %s",
                     self.name and (self.name .. " ") or "", self.path or "study",
                     c.complete + c.pruned + c.failed, c.complete, c.pruned, c.failed,
                     self.directions and (concat(self.directions, ", ") .. "; the Pareto front")
                     or self.direction)}
  for _, row in ipairs(rows) do
    local cells = {}
    for j, cell in ipairs(row) do cells[j] = fmt("%" .. width[j] .. "s", cell) end
    lines[#lines + 1] = concat(cells, "  ")
  end
  if #done == 0 then lines[#lines + 1] = "(no complete trial yet)" end
  return concat(lines, "\n")
end

-- study:plot(path, {title =, ylabel =, width =, height =}) --> svg: every trial's value (pruned ones
-- at their last report) and the best value so far. With directions: every
-- complete trial by its first two values, the Pareto front drawn over them
-- (Optuna's plot_pareto_front); xlabel names the first.
function Study:plot(path, opts)
  if path ~= nil and type(path) ~= "string" then
    error(fmt("study:plot: path must be a file name (a string) or nil, got %s", type(path)), 2)
  end
  local o = util.check_options(opts, "study:plot", {title = true, ylabel = true, xlabel = true,
                                                   width = true, height = true}, 2)
  local plot = require "moongrad.plot"
  if self.directions then return self:_plot_front(path, o, plot) end
  local xs, ys, px, py, bx, by = {}, {}, {}, {}, {}, {}
  local best
  for _, r in ipairs(self:trials()) do
    if r.state == "complete" then
      xs[#xs + 1], ys[#ys + 1] = r.number, r.value
      if not best or self.sign * r.value < self.sign * best then
        -- a step, not a slope: the best so far changes at this trial
        if best then bx[#bx + 1], by[#by + 1] = r.number, best end
        best = r.value
      end
    elseif r.state == "pruned" and r.value then
      px[#px + 1], py[#py + 1] = r.number, r.value
    end
    if best then bx[#bx + 1], by[#by + 1] = r.number, best end
  end
  local series = {{name = "trial value", x = xs, y = ys, line = false, color = plot.colors[1]}}
  if #px > 0 then
    series[#series + 1] = {name = "pruned (last report)", x = px, y = py, line = false,
                           color = "#aaaaaa"}
  end
  series[#series + 1] = {name = "best so far", x = bx, y = by, color = plot.colors[2],
                         markers = false}
  return plot.lines{series = series, path = path, xlabel = "trial", ylabel = o.ylabel or "value",
                    title = o.title or fmt("%s (%s)", self.name or "Study", self.direction),
                    width = o.width, height = o.height}
end

function Study:_plot_front(path, o, plot)
  if #self.directions < 2 then
    error("study:plot: a Pareto front needs two directions; this study has one", 3)
  end
  local xs, ys, fx, fy = {}, {}, {}, {}
  for _, r in ipairs(self:trials()) do
    if r.state == "complete" then xs[#xs + 1], ys[#ys + 1] = r.values[1], r.values[2] end
  end
  local front = self:best_trials()
  sort(front, function(a, b) return a.values[1] < b.values[1] end)
  for i, r in ipairs(front) do fx[i], fy[i] = r.values[1], r.values[2] end
  return plot.lines{series = {
      {name = "trial", x = xs, y = ys, line = false, color = plot.colors[1]},
      {name = "Pareto front", x = fx, y = fy, color = plot.colors[2]}},
    path = path, xlabel = o.xlabel or fmt("value 1 (%s)", self.directions[1]),
    ylabel = o.ylabel or fmt("value 2 (%s)", self.directions[2]),
    title = o.title or fmt("%s: Pareto front", self.name or "Study"),
    width = o.width, height = o.height}
end

-- The dimension a parameter was searched over: the declared one, or the
-- one the trials that asked for it described (define-by-run).
local function dimension(study, name, trials)
  if study.space.dims[name] then return study.space.dims[name] end
  for _, r in ipairs(trials) do
    local spec = r.specs and r.specs[name]
    if spec then return require("moongrad.tune.space").from_spec(spec) end
  end
end

-- study:plot_params([path [, {title =, objective = 1, columns = 3, width =, height =}]])
--   --> svg text: one panel per parameter, every complete trial's value
-- against that parameter (a log axis for log dimensions, the choices by
-- name for a choice), the best trial ringed (with directions: the Pareto
-- front, by objective `objective`). Optuna's plot_slice.
function Study:plot_params(path, opts)
  if path ~= nil and type(path) ~= "string" then
    error(fmt("study:plot_params: path must be a file name (a string) or nil, got %s",
              type(path)), 2)
  end
  local o = util.check_options(opts, "study:plot_params", {title = true, objective = true,
                                                          columns = true, width = true,
                                                          height = true}, 2)
  local k = o.objective or 1
  local count = self.directions and #self.directions or 1
  if type(k) ~= "number" or k ~= floor(k) or k < 1 or k > count then
    error(fmt("study:plot_params: objective must be an integer in 1..%d, got %s", count,
              tostring(k)), 2)
  end
  local function value(r) return r.values and r.values[k] or r.value end
  local trials, best = {}, {}
  for _, r in ipairs(self:trials()) do
    if r.state == "complete" then trials[#trials + 1] = r end
  end
  if self.directions then
    for _, r in ipairs(self:best_trials()) do best[r.number] = true end
  else
    local b = self:best()
    if b then best[b.number] = true end
  end
  local plot = require "moongrad.plot"
  local panels = {}
  for _, name in ipairs(self:param_names()) do
    local dim = dimension(self, name, self:trials())
    local xs, ys, bx, by = {}, {}, {}, {}
    for _, r in ipairs(trials) do
      local v = r.params[name]
      if v ~= nil and dim then
        if dim.kind == "choice" then
          for i, ch in ipairs(dim.choices) do if ch == v then v = i end end
        end
        if type(v) == "number" then
          xs[#xs + 1], ys[#ys + 1] = v, value(r)
          if best[r.number] then bx[#bx + 1], by[#by + 1] = v, value(r) end
        end
      end
    end
    local labels
    if dim and dim.kind == "choice" then
      labels = {}
      for i, ch in ipairs(dim.choices) do labels[i] = tostring(ch) end
    end
    panels[#panels + 1] = {title = name, xlabel = name .. (dim and dim.log and " (log scale)" or ""),
      ylabel = self.directions and fmt("value %d (%s)", k, self.directions[k])
               or fmt("value (%s)", self.direction),
      log_x = dim and dim.log, x_labels = labels, series = {
        {name = "trial", x = xs, y = ys, line = false, color = plot.colors[1]},
        {name = self.directions and "Pareto front" or "best", x = bx, y = by, line = false,
         ring = true, color = plot.colors[4]}}}
  end
  if #panels == 0 then
    error("study:plot_params: the study has no parameters to show (none declared or asked for)", 2)
  end
  return plot.panels{panels = panels, path = path, columns = o.columns, width = o.width,
                     height = o.height,
                     title = o.title or fmt("%s: value against each parameter", self.name or "Study")}
end

-- study:write_csv(path): one row per trial (number, state, value, seconds,
-- the parameters, the attributes set with trial:set, the error).
function Study:write_csv(path)
  if type(path) ~= "string" then
    error(fmt("study:write_csv: path must be a file name (a string), got %s", type(path)), 2)
  end
  local text = store.csv(self:trials(), self:param_names(),
                         self.directions and #self.directions)
  store.write_file(path, text, "study:write_csv", 2)
  return text
end

return {methods = Study, value_text = value_text}
