-- moongrad.tune.pareto: Pareto dominance for multi-objective studies.
--
-- A point is a list of losses, every one minimised (a study flips the sign
-- of the objectives it maximises before anything here sees them).
--
--   pareto.dominates(a, b)        a is no worse anywhere and better somewhere
--   pareto.fronts(points)         the non-dominated sorting: a list of fronts
--   pareto.crowding(points, front) NSGA-II's crowding distances
--   pareto.hypervolume(points, ref) the volume the points dominate up to ref
--   pareto.reference(points)      Optuna's reference point, and the points clipped
--   pareto.hssp(points, ref, k)   k points of the most hypervolume, greedily
--
-- Fronts hold indices into points, ascending; front 1 is the Pareto front.
local huge, max, min, sort = math.huge, math.max, math.min, table.sort
local EPS = 1e-12  -- Optuna's stand-in for a zero coordinate of the reference point
local ipairs = ipairs

local pareto = {}

function pareto.dominates(a, b)
  local better = false
  for k = 1, #a do
    if a[k] > b[k] then return false end
    if a[k] < b[k] then better = true end
  end
  return better
end
local dominates = pareto.dominates

-- Deb, Pratap, Agarwal & Meyarivan 2002 ("fast non-dominated sorting"):
-- each point's count of dominators and list of points it dominates, then
-- the fronts peeled off one by one. O(m n²) for n points of m losses.
function pareto.fronts(points)
  local n = #points
  local beaten_by, dominated = {}, {}
  for i = 1, n do beaten_by[i], dominated[i] = 0, {} end
  for i = 1, n - 1 do
    for j = i + 1, n do
      if dominates(points[i], points[j]) then
        dominated[i][#dominated[i] + 1] = j
        beaten_by[j] = beaten_by[j] + 1
      elseif dominates(points[j], points[i]) then
        dominated[j][#dominated[j] + 1] = i
        beaten_by[i] = beaten_by[i] + 1
      end
    end
  end
  local fronts, current = {}, {}
  for i = 1, n do
    if beaten_by[i] == 0 then current[#current + 1] = i end
  end
  while #current > 0 do
    fronts[#fronts + 1] = current
    local next_front = {}
    for _, i in ipairs(current) do
      for _, j in ipairs(dominated[i]) do
        beaten_by[j] = beaten_by[j] - 1
        if beaten_by[j] == 0 then next_front[#next_front + 1] = j end
      end
    end
    sort(next_front)
    current = next_front
  end
  return fronts
end

-- The crowding distance of each point of front (indices into points):
-- per loss, the gap between its neighbours along that loss over the
-- front's range of it, summed; the extremes of each loss get infinity.
-- --> {index -> distance}.
function pareto.crowding(points, front)
  local dist = {}
  for _, i in ipairs(front) do dist[i] = 0 end
  if #front <= 2 then
    for _, i in ipairs(front) do dist[i] = huge end
    return dist
  end
  for k = 1, #points[front[1]] do
    local order = {table.unpack(front)}
    -- ties by index, so the result does not depend on the sort's whims
    sort(order, function(a, b)
      if points[a][k] ~= points[b][k] then return points[a][k] < points[b][k] end
      return a < b
    end)
    local lo, hi = points[order[1]][k], points[order[#order]][k]
    dist[order[1]], dist[order[#order]] = huge, huge
    if hi > lo then
      for p = 2, #order - 1 do
        local i = order[p]
        dist[i] = dist[i] + (points[order[p + 1]][k] - points[order[p - 1]][k]) / (hi - lo)
      end
    end
  end
  return dist
end

-- The hypervolume of the region the points dominate, bounded by ref (a
-- point every one of them should dominate; coordinates beyond ref add
-- nothing). Exact, by slicing along the last loss (While, Hingston,
-- Barone & Huband 2006): fine for the tens of points and few losses of a
-- study.
local function volume(pts, ref, m)
  if #pts == 0 then return 0 end
  if m == 1 then
    local best = huge
    for _, p in ipairs(pts) do best = min(best, p[1]) end
    return max(0, ref[1] - best)
  end
  local order = {table.unpack(pts)}
  sort(order, function(a, b) return a[m] < b[m] end)
  local total, below = 0, {}
  for i, p in ipairs(order) do
    below[#below + 1] = p
    local top = i < #order and order[i + 1][m] or ref[m]
    if top > p[m] then total = total + volume(below, ref, m - 1) * (top - p[m]) end
  end
  return total
end

function pareto.hypervolume(points, ref)
  local inside = {}
  for _, p in ipairs(points) do
    local ok = true
    for k = 1, #ref do
      if not (p[k] < ref[k]) then ok = false break end
    end
    if ok then inside[#inside + 1] = p end
  end
  return volume(inside, ref, #ref)
end

-- pareto.reference(points) --> the points clipped into the box the
-- reference point bounds, and Optuna's reference point for them: per loss,
-- 1.1 times the worst finite value (0.9 times a negative one, EPS for 0);
-- an infinite loss is clipped to the finite range so that no volume is
-- infinite.
function pareto.reference(points)
  local ref, clipped = {}, {}
  for k = 1, #points[1] do
    local worst, best
    for _, p in ipairs(points) do
      local v = p[k]
      if v > -huge and v < huge then
        if not worst or v > worst then worst = v end
        if not best or v < best then best = v end
      end
    end
    worst = worst or 0
    ref[k] = max(1.1 * worst, 0.9 * worst)
    if ref[k] == 0 then ref[k] = EPS end
    local lo = best or ref[k] - 1
    for i, p in ipairs(points) do
      clipped[i] = clipped[i] or {}
      clipped[i][k] = min(ref[k], max(lo, p[k]))
    end
  end
  return clipped, ref
end

-- Greedy hypervolume subset selection (Guerreiro, Fonseca & Paquete 2016:
-- within 1 - 1/e of the best subset): `count` of the points, each time the
-- one adding the most hypervolume to those taken, the first on a tie.
-- --> their positions in points, in the order taken. Lazily (Minoux 1978):
-- a point's gain only shrinks as others are taken, so a gain measured in
-- an earlier round bounds the present one, and only a candidate whose
-- bound leads is measured again; the choice is the plain greedy one, at a
-- fraction of the hypervolumes when the front is large.
function pareto.hssp(points, ref, count)
  local gain, with, fresh, taken, chosen, picked, hv = {}, {}, {}, {}, {}, {}, 0
  for i, p in ipairs(points) do
    with[i] = pareto.hypervolume({p}, ref)
    gain[i], fresh[i] = with[i], 1
  end
  while #picked < count do
    local round = #picked + 1
    while true do
      local top
      for i = 1, #points do
        if not taken[i] and (top == nil or gain[i] > gain[top]) then top = i end
      end
      if fresh[top] == round then
        taken[top], hv = true, with[top]
        chosen[round], picked[round] = points[top], top
        break
      end
      chosen[round] = points[top]
      with[top] = pareto.hypervolume(chosen, ref)
      gain[top], fresh[top] = with[top] - hv, round
    end
  end
  return picked
end

return pareto
