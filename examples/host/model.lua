-- model.lua — the model examples/host/host.c embeds: an MLP that learns
-- y = sin(x). The host calls these globals:
--   set_data(x, y)        training data, [N, 1] float32 tensors
--   train_slice(n_steps)  n Adam steps on the data; returns the mean loss
--   predict(x)            the model's output for x [M, 1], without a graph
--   save(path), load(path)  the weights, as a safetensors checkpoint
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"

mg.manual_seed(7)
local net = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                          nn.Linear(32, 1))
local opt = optim.Adam(net, {lr = 1e-2})
local x_train, y_train

function set_data(x, y)
  x_train, y_train = x, y
end

function train_slice(n_steps)
  net:train()
  local total = 0
  for _ = 1, n_steps do
    opt:zero_grad()
    local loss = F.mse_loss(net(x_train), y_train)
    loss:backward()
    opt:step()
    total = total + loss:item()
  end
  return total / n_steps
end

function predict(x)
  net:eval()
  return mg.no_grad(function() return net(x) end)
end

function save(path)
  mg.save(path, net:state_dict())
end

function load(path)
  net:load_state_dict(mg.load(path))
end
