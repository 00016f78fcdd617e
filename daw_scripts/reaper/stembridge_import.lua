-- stembridge_import.lua: place the stems of a manifest v1 on "SB <Stem>" tracks, and read
-- the bridge's status.json.
--
-- Each placement goes to the track it names, at start_s with length_s (seconds, as computed by
-- the bridge). If the track already has an item starting there (the same section), the stem is
-- added to it as a new take and made active; older takes stay. Otherwise a new item is made.

local json = require("stembridge_json")
local util = require("stembridge_util")

local I = {}

I.POSITION_TOLERANCE_S = 0.001

local function track_name(track)
  local _, name = reaper.GetSetMediaTrackInfo_String(track, "P_NAME", "", false)
  return name
end

function I.find_track(name)
  for i = 0, reaper.CountTracks(0) - 1 do
    local track = reaper.GetTrack(0, i)
    if track_name(track) == name then return track end
  end
  return nil
end

function I.ensure_track(name)
  local track = I.find_track(name)
  if track then return track end
  local index = reaper.CountTracks(0)
  reaper.InsertTrackAtIndex(index, true)
  track = reaper.GetTrack(0, index)
  reaper.GetSetMediaTrackInfo_String(track, "P_NAME", name, true)
  return track
end

--- The item on `track` that starts at start_s (seconds), or nil.
function I.find_item(track, start_s)
  for i = 0, reaper.CountTrackMediaItems(track) - 1 do
    local item = reaper.GetTrackMediaItem(track, i)
    local pos = reaper.GetMediaItemInfo_Value(item, "D_POSITION")
    if math.abs(pos - start_s) <= I.POSITION_TOLERANCE_S then return item end
  end
  return nil
end

local function default_track(stem)
  return "SB " .. stem:sub(1, 1):upper() .. stem:sub(2)
end

local function take_name(placement, manifest)
  local name = util.basename(placement.file):gsub("%.[^.]+$", "")
  local range = json.get(manifest, "range")
  if type(range) == "table" and range.start_bar and range.end_bar then
    name = string.format("%s (bars %g-%g)", name, range.start_bar, range.end_bar - 1)
  end
  return name
end

--- Place one placement; returns the new take, or nil and a message.
function I.place(project_dir, placement, manifest)
  local rel = placement.file
  local start_s, length_s = tonumber(placement.start_s), tonumber(placement.length_s)
  if type(rel) ~= "string" or not start_s or not length_s or type(placement.stem) ~= "string" then
    return nil, "a placement lacks file, stem, start_s or length_s"
  end
  local path = util.join(project_dir, (rel:gsub("/", util.SEP)))
  if not util.file_exists(path) then
    return nil, "stem file " .. rel .. " is missing from the project folder"
  end
  -- the source first: a file REAPER cannot open must leave no empty track, item or take behind
  local source = reaper.PCM_Source_CreateFromFile(path)
  if not source then return nil, "REAPER cannot open " .. rel end
  local track_name_wanted = json.get(placement, "track")
  if type(track_name_wanted) ~= "string" or track_name_wanted == "" then track_name_wanted = default_track(placement.stem) end
  local track = I.ensure_track(track_name_wanted)
  local item = I.find_item(track, start_s)
  if not item then
    item = reaper.AddMediaItemToTrack(track)
    reaper.SetMediaItemInfo_Value(item, "D_POSITION", start_s)
    reaper.SetMediaItemInfo_Value(item, "D_LENGTH", length_s)
  elseif math.abs(reaper.GetMediaItemInfo_Value(item, "D_LENGTH") - length_s) > I.POSITION_TOLERANCE_S then
    reaper.SetMediaItemInfo_Value(item, "D_LENGTH", length_s)
  end
  local take = reaper.AddTakeToMediaItem(item)
  reaper.SetMediaItemTake_Source(take, source)
  reaper.SetMediaItemTakeInfo_Value(take, "D_STARTOFFS", 0)
  reaper.GetSetMediaItemTakeInfo_String(take, "P_NAME", take_name(placement, manifest), true)
  reaper.SetActiveTake(take)
  return take
end

--- Import every placement of a manifest as one undo point. Returns placed count and errors.
function I.import_manifest(project_dir, manifest)
  local errors = {}
  local job = tostring(json.get(manifest, "job_id") or "?")
  local status = json.get(manifest, "status") or "done"
  if status ~= "done" then
    local msg = json.get(manifest, "message") or json.get(manifest, "error") or "no message"
    if type(msg) == "table" then msg = json.encode(msg) end
    errors[1] = "job " .. job .. " ended with status '" .. tostring(status) .. "': " .. tostring(msg)
    return 0, errors
  end
  local placements = json.get(manifest, "placements")
  if type(placements) ~= "table" then
    return 0, { "manifest " .. job .. " has no placements list" }
  end
  local placed = 0
  reaper.Undo_BeginBlock2(0)
  reaper.PreventUIRefresh(1)
  -- Whatever goes wrong half-way, the UI refresh is re-enabled and the undo block is closed, so
  -- the stems placed so far are one undo point and REAPER is left in a normal state.
  local ok, err = pcall(function()
    for _, p in ipairs(placements) do
      local take, perr = I.place(project_dir, p, manifest)
      if take then
        placed = placed + 1
        if type(p.section) == "string" then util.set_state("last_job:" .. p.section, job) end
      else
        errors[#errors + 1] = "job " .. job .. ": " .. perr
      end
    end
  end)
  if placed > 0 then util.set_state("last_job", job) end
  reaper.PreventUIRefresh(-1)
  reaper.Undo_EndBlock2(0, "StemBridge: import " .. job, -1)
  reaper.UpdateArrange()
  if not ok then
    errors[#errors + 1] = string.format("job %s: the import stopped after %d of %d stem(s) (%s). "
      .. "It will not be retried: undo it (Edit > Undo 'StemBridge: import %s') and copy the manifest "
      .. "to a new name in the outbox to import it again.", job, placed, #placements, tostring(err), job)
  end
  return placed, errors
end

-- ---------------------------------------------------------------------------------------------
-- status.json: {"queued": [...], "running": [{"job_id", "progress", "message"}], "finished": [...]}
-- Read tolerantly: entries may be ids or objects, lists or single objects; keys may be missing.

local function as_list(v)
  if type(v) ~= "table" or v == json.null then return {} end
  if v.job_id or v.id then return { v } end
  return v
end

local function entry_id(e)
  if type(e) == "string" then return e end
  if type(e) == "table" then return json.get(e, "job_id") or json.get(e, "id") end
  return nil
end

--- Summary of status.json: {queued = {ids}, running = {{job_id, progress (0..1), message}}, finished = n}.
function I.read_status(outbox)
  local status = util.read_json(util.join(outbox, "status.json"))
  local out = { queued = {}, running = {}, finished = 0, ok = status ~= nil }
  if type(status) ~= "table" then return out end
  for _, e in ipairs(as_list(json.get(status, "queued"))) do
    local id = entry_id(e)
    if id then out.queued[#out.queued + 1] = tostring(id) end
  end
  for _, e in ipairs(as_list(json.get(status, "running"))) do
    local id = entry_id(e)
    if id then
      local progress = type(e) == "table" and tonumber(json.get(e, "progress")) or nil
      if progress and progress > 1 then progress = progress / 100 end
      local msg = type(e) == "table" and json.get(e, "message") or nil
      out.running[#out.running + 1] = {
        job_id = tostring(id),
        progress = progress and math.max(0, math.min(1, progress)) or nil,
        message = type(msg) == "string" and msg or "",
      }
    end
  end
  out.finished = #as_list(json.get(status, "finished"))
  return out
end

--- Lines of text describing a status summary (for the listener window).
function I.status_lines(summary)
  local lines = {}
  if not summary.ok then
    lines[1] = "Waiting for the bridge (no status.json yet)"
    return lines
  end
  for _, r in ipairs(summary.running) do
    local pct = r.progress and string.format("%3d%%", math.floor(r.progress * 100 + 0.5)) or "  ..."
    lines[#lines + 1] = string.format("%s  %s  %s", pct, r.job_id, r.message)
  end
  if #summary.running == 0 then lines[#lines + 1] = "Idle" end
  lines[#lines + 1] = string.format("%d queued, %d finished", #summary.queued, summary.finished)
  return lines
end

return I
