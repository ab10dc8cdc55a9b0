-- moongrad.tune.rng: small deterministic random streams for samplers.
--
-- A stream is keyed by integers (the study's seed, a trial number, a
-- purpose), so trial k of a study draws the same numbers whether the study
-- ran straight through, was resumed, or ran its trials in another order on
-- several workers. splitmix64 (Steele, Lea & Flood 2014) on Lua's 64-bit
-- integers: each key is mixed into the state, then every draw advances it.
--
--   local r = rng.new(seed, number, 7)
--   r:uniform()   --> float in [0, 1)
--   r:normal()    --> standard normal
--   r:int(n)      --> integer in 1..n
local floor, log, sqrt, cos, pi = math.floor, math.log, math.sqrt, math.cos, math.pi
local math_type, error, select = math.type, error, select

local GOLDEN = 0x9E3779B97F4A7C15

local function mix(z)
  z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * 0x94D049BB133111EB
  return z ~ (z >> 31)
end

local Stream = {}
Stream.__index = Stream

-- The next 64 random bits.
function Stream:bits()
  self.state = self.state + GOLDEN
  return mix(self.state)
end

-- A float in [0, 1) with 53 random bits.
function Stream:uniform()
  return (self:bits() >> 11) * 0x1p-53
end

function Stream:normal()
  local u1 = 1 - self:uniform()   -- (0, 1]: log is finite
  return sqrt(-2 * log(u1)) * cos(2 * pi * self:uniform())
end

function Stream:int(n)
  return floor(self:uniform() * n) + 1
end

local rng = {}

-- rng.new(key1, key2, ...) with integer (or integral float) keys.
function rng.new(...)
  local state = 0x6A09E667F3BCC909
  for i = 1, select("#", ...) do
    local k = select(i, ...)
    if math_type(k) ~= "integer" then
      if k ~= k or k ~= floor(k) then error("tune.rng: keys must be integers", 2) end
      k = floor(k)
    end
    state = mix(state ~ mix(k + GOLDEN * i))
  end
  return setmetatable({state = state}, Stream)
end

return rng
