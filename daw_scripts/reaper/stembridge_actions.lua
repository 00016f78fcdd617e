-- stembridge_actions.lua: what the menu actions do (Generate, Regenerate selection, Variation,
-- Cancel). Each action script is one line that calls a function here.

local json = require("stembridge_json")
local util = require("stembridge_util")
local request = require("stembridge_request")
local import = require("stembridge_import")

local A = {}

local function count_notes(inputs, role)
  local src = inputs[role]
  if type(src) == "table" and src.notes then return #src.notes end
  return 0
end

--- Generate: gather the selection and sections, write request v1 to the inbox.
function A.generate()
  local proj = 0
  local project_dir = util.require_project_dir()
  if not project_dir then return nil end
  local grid, grid_err = request.bar_grid(proj)
  if not grid then
    util.fail(grid_err)
    return nil
  end
  local settings = request.ask_settings()
  if not settings then return nil end
  local req, spans = request.build(proj, project_dir, settings)
  if not req then
    if spans ~= "cancelled" then util.fail(spans) end
    return nil
  end
  local box = util.mailbox(project_dir)
  local name = util.unique_name("reaper-generate")
  -- Our own copy, reused by "Regenerate selection" (the bridge moves inbox files away).
  util.write_atomic(util.join(box.requests, name .. ".json"), json.encode(req))
  for _, span in ipairs(spans) do util.set_state("last_request:" .. span.name, name) end
  local path = util.join(box.inbox, name .. ".json")
  util.write_atomic(path, json.encode(req))
  local melody = req.inputs.melody and (req.inputs.melody.audio and "hummed audio" or
    (count_notes(req.inputs, "melody") .. " notes")) or "none"
  util.log(string.format("Sent %s: %d section(s), chords %d notes, drums %d notes, melody %s.",
    name, #req.sections, count_notes(req.inputs, "chords"), count_notes(req.inputs, "drums"), melody))
  return path, req
end

--- Regenerate selection: the time selection, snapped to whole bars, becomes `range` of the
-- last request of each section it touches. Sections from different requests get one request each.
function A.regenerate()
  local proj = 0
  local project_dir = util.require_project_dir()
  if not project_dir then return nil end
  local t0, t1 = request.time_selection(proj)
  if not t0 then
    util.fail("Make a time selection over the bars you want to regenerate, then run this again.")
    return nil
  end
  local grid, grid_err = request.bar_grid(proj)
  if not grid then
    util.fail(grid_err)
    return nil
  end
  local bar0 = request.bar_floor(proj, t0)
  local bar1 = request.bar_ceil(proj, t1)
  if bar1 <= bar0 then bar1 = bar0 + 1 end
  local groups, order = {}, {}
  for _, region in ipairs(request.regions(proj)) do
    local r0, r1 = request.bar_at(proj, region.t0), request.bar_at(proj, region.t1)
    if r0 < bar1 and bar0 < r1 then
      local req_name = util.get_state("last_request:" .. region.name)
      if not req_name then
        util.fail("Section '" .. region.name .. "' has not been generated yet. Run "
          .. "'StemBridge - Generate' first, then regenerate bars inside it.")
        return nil
      end
      local job = util.get_state("last_job:" .. region.name, "")
      local key = req_name .. "|" .. job
      if not groups[key] then
        groups[key] = { req_name = req_name, job = job, bar0 = r0, bar1 = r1, names = {} }
        order[#order + 1] = key
      end
      local g = groups[key]
      g.bar0, g.bar1 = math.min(g.bar0, r0), math.max(g.bar1, r1)
      g.names[#g.names + 1] = region.name
    end
  end
  if #order == 0 then
    local only = util.get_state("last_request:Selection")
    if not only then
      util.fail("The time selection touches no generated section. Select bars inside a region "
        .. "you generated before.")
      return nil
    end
    groups.sel = { req_name = only, job = util.get_state("last_job:Selection", ""), bar0 = bar0, bar1 = bar1, names = { "Selection" } }
    order[1] = "sel"
  end
  local box = util.mailbox(project_dir)
  local counter = math.tointeger(tonumber(util.get_state("regen_counter", "0"))) or 0
  local sent = {}
  for _, key in ipairs(order) do
    local g = groups[key]
    local req, err = util.read_json(util.join(box.requests, g.req_name .. ".json"))
    if type(req) ~= "table" then
      util.fail("Cannot read the last request of " .. table.concat(g.names, ", ") .. " (" .. tostring(err)
        .. "). Generate those sections again.")
      return nil
    end
    counter = counter + 1
    req.range = {
      start_bar = util.int_if_whole(math.max(bar0, g.bar0), 1e-6),
      end_bar = util.int_if_whole(math.min(bar1, g.bar1), 1e-6),
    }
    if g.job ~= "" then req.base_job = g.job else req.base_job = nil end
    req.seed = ((math.tointeger(req.seed) or 0) + counter) % 2147483647
    local name = util.unique_name("reaper-regenerate")
    local path = util.join(box.inbox, name .. ".json")
    util.write_atomic(path, json.encode(req))
    util.log(string.format("Sent %s: regenerate bars %g-%g of %s.", name, req.range.start_bar,
      req.range.end_bar - 1, table.concat(g.names, ", ")))
    sent[#sent + 1] = path
  end
  util.set_state("regen_counter", counter)
  return sent
end

--- The job to make a variation of: the section under the edit cursor, else the last import.
local function current_job(proj)
  local t = request.time_selection(proj) or reaper.GetCursorPosition()
  for _, region in ipairs(request.regions(proj)) do
    if t >= region.t0 and t < region.t1 then
      local job = util.get_state("last_job:" .. region.name)
      if job then return job end
    end
  end
  return util.get_state("last_job")
end

--- Variation: ask the bridge for the same request with a new seed (arrives as a new take).
function A.variation()
  local project_dir = util.require_project_dir()
  if not project_dir then return nil end
  local job = current_job(0)
  if not job then
    util.fail("There is no StemBridge result in this project yet. Run 'StemBridge - Generate' first.")
    return nil
  end
  local path = util.post(project_dir, { version = 1, action = "variation", job_id = job }, "reaper-variation")
  util.log("Asked for a variation of " .. job .. ".")
  return path
end

--- Cancel: cancel every running and queued job of this project.
function A.cancel()
  local project_dir = util.require_project_dir()
  if not project_dir then return nil end
  local summary = import.read_status(util.mailbox(project_dir).outbox)
  local ids = {}
  for _, r in ipairs(summary.running) do ids[#ids + 1] = r.job_id end
  for _, q in ipairs(summary.queued) do ids[#ids + 1] = q end
  if #ids == 0 then
    util.log("Nothing to cancel: no job is running or queued.")
    return {}
  end
  local paths = {}
  for _, id in ipairs(ids) do
    paths[#paths + 1] = util.post(project_dir, { version = 1, action = "cancel", job_id = id }, "reaper-cancel")
  end
  util.log("Asked the bridge to cancel " .. table.concat(ids, ", ") .. ".")
  return paths
end

--- Run one action by name, turning a Lua error into a console message and a dialog.
function A.run(name)
  local ok, result = xpcall(A[name], debug.traceback)
  if not ok then
    util.fail("'" .. name .. "' stopped with an error: " .. tostring(result))
    return nil
  end
  return result
end

return A
