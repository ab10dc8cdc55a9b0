-- A busted output handler for `make test`: one line per spec file as it
-- finishes (its passes, failures and skips, its seconds and the running
-- total), then the failures in full, the skipped specs with their reasons,
-- and busted's own summary line, which tools/run-specs.sh reads.
--
--   busted --output=spec/support/progress.lua spec
--
-- A long run thus shows where it is and what each file costs, and a
-- skipped spec says why right where the count is.
return function(options)
  local busted = require "busted"
  local handler = require "busted.outputHandlers.base"()
  local pretty = require "pl.pretty"
  local fmt, write = string.format, io.write
  local now = busted.monotime   -- busted's own clock (luasystem)

  local file, totals = nil, {passed = 0, failed = 0, skipped = 0}

  local function flush() io.stdout:flush() end

  handler.fileStart = function(element)
    file = {name = element.name, passed = 0, failed = 0, skipped = 0, t0 = now()}
    return nil, true
  end

  handler.fileEnd = function()
    if not file then return nil, true end
    local parts = {fmt("%d passed", file.passed)}
    if file.failed > 0 then parts[#parts + 1] = fmt("%d FAILED", file.failed) end
    if file.skipped > 0 then parts[#parts + 1] = fmt("%d skipped", file.skipped) end
    write(fmt("%-44s %-30s %6.1f s   (%d passed so far)\n", file.name, table.concat(parts, ", "),
              now() - file.t0, totals.passed))
    flush()
    file = nil
    return nil, true
  end

  handler.testEnd = function(_, _, status)
    local key = status == "success" and "passed" or status == "pending" and "skipped" or "failed"
    totals[key] = totals[key] + 1
    if file then file[key] = file[key] + 1 end
    return nil, true
  end

  -- an error outside any `it` (in a file's body or a describe) fails the file
  handler.fileError = function()
    if file then file.failed = file.failed + 1 end
    return nil, true
  end

  local function message(m)
    if type(m) == "string" then return m end
    if m == nil then return "nil error" end
    return pretty.write(m)
  end

  local function where(e)
    local trace = e.element and e.element.trace or e.trace
    if trace and trace.short_src then return fmt("%s @ %s", trace.short_src, trace.currentline) end
    return "?"
  end

  handler.suiteEnd = function()
    write("\n")
    if #handler.pendings > 0 then
      write(fmt("Skipped (%d), and why:\n", #handler.pendings))
      for _, p in ipairs(handler.pendings) do
        -- pending("why") carries its own "file:line: " prefix; where() says it
        -- once; a pending block's reason is its name, and it has no message
        local why = p.message ~= nil and message(p.message):gsub("^[^\n]-:%d+: ", "") or nil
        write(fmt("  %s\n    %s%s\n", p.name, where(p), why and (": " .. why) or ""))
      end
      write("\n")
    end
    for _, list in ipairs {{"Failure", handler.failures}, {"Error", handler.errors}} do
      for _, f in ipairs(list[2]) do
        write(fmt("%s -> %s\n%s\n%s\n", list[1], where(f), f.name, message(f.message)))
        if options.verbose and f.trace and f.trace.traceback then write(f.trace.traceback, "\n") end
        write("\n")
      end
    end
    -- busted's own wording, which tools/run-specs.sh reads
    write(fmt("%d successes / %d failures / %d errors / %d pending : %f seconds\n",
              handler.successesCount, handler.failuresCount, handler.errorsCount,
              handler.pendingsCount, handler.getDuration()))
    flush()
    return nil, true
  end

  busted.subscribe({"file", "start"}, handler.fileStart)
  busted.subscribe({"file", "end"}, handler.fileEnd)
  busted.subscribe({"test", "end"}, handler.testEnd, {predicate = handler.cancelOnPending})
  busted.subscribe({"error", "file"}, handler.fileError)
  busted.subscribe({"failure", "file"}, handler.fileError)
  busted.subscribe({"suite", "end"}, handler.suiteEnd)
  return handler
end
