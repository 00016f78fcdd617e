-- stembridge_listener.lua: the background part of "StemBridge - Listener".
--
-- Runs on REAPER's defer timer (no threads): every POLL_S seconds it reads the outbox, imports
-- each manifest it has not imported yet (remembered in the project), reports rejected requests
-- from inbox/failed/ in the console, and draws queue and progress from status.json in a small
-- window. Closing the window or running the action again stops it.

local json = require("stembridge_json")
local util = require("stembridge_util")
local import = require("stembridge_import")

local L = {}

L.POLL_S = 0.5
L.MAX_BAD_READS = 10

local state = {
  last_poll = -math.huge,
  lines = { "Starting..." },
  progress = nil,
  last_import = "",
  bad_reads = {},
  stopped = false,
  window = false,
}

local function is_manifest_name(name)
  return name:match("%.json$") and name ~= "status.json" and name:sub(1, 1) ~= "."
end

local function report(msg)
  util.log("Error: " .. msg)
end

local function import_new_manifests(project_dir, box)
  reaper.EnumerateFiles(box.outbox, -1) -- re-read the folder, REAPER caches listings
  for _, name in ipairs(util.list_files(box.outbox)) do
    if is_manifest_name(name) then
      local job = name:sub(1, -6)
      if not util.get_state("imported:" .. job) then
        local manifest, err = util.read_json(util.join(box.outbox, name))
        if type(manifest) == "table" then
          -- Recorded before importing: a manifest that fails half-way is reported once, never
          -- imported again on every poll.
          util.set_state("imported:" .. job, "1")
          local ok, placed, errors = pcall(import.import_manifest, project_dir, manifest)
          if not ok then
            util.set_state("imported:" .. job, "failed")
            placed, errors = 0, { "the import of " .. job .. " failed (" .. tostring(placed) .. "); it will not "
              .. "be retried. Copy the manifest to a new name in the outbox to try again." }
          end
          for _, e in ipairs(errors) do report(e) end
          if placed > 0 then
            state.last_import = string.format("Imported %d stem(s) from %s", placed, job)
            util.log(state.last_import)
          end
          if #errors > 0 then
            state.last_import = string.format("Import of %s had errors: see the ReaScript console", job)
          end
        else
          local n = (state.bad_reads[job] or 0) + 1
          state.bad_reads[job] = n
          if n >= L.MAX_BAD_READS then
            report("cannot read manifest " .. name .. ": " .. tostring(err))
            util.set_state("imported:" .. job, "unreadable")
          end
        end
      end
    end
  end
end

local function report_failed_requests(box)
  reaper.EnumerateFiles(box.failed, -1)
  for _, name in ipairs(util.list_files(box.failed)) do
    if name:match("%.error%.txt$") and not util.get_state("reported:" .. name) then
      local text = util.read_file(util.join(box.failed, name)) or "(no details)"
      report("the bridge rejected " .. name:gsub("%.error%.txt$", ".json") .. ": " .. util.trim(text))
      util.set_state("reported:" .. name, "1")
    end
  end
end

--- One polling step: import, report, refresh the status text. Safe to call at any time.
function L.poll()
  local project_dir = util.project_dir()
  if not project_dir then
    state.lines = { "Save the project so StemBridge has a folder to work in." }
    state.progress = nil
    return
  end
  local box = util.mailbox(project_dir)
  import_new_manifests(project_dir, box)
  report_failed_requests(box)
  local summary = import.read_status(box.outbox)
  state.lines = import.status_lines(summary)
  state.progress = summary.running[1] and summary.running[1].progress or nil
  state.summary = summary
end

function L.state()
  return state
end

local function draw()
  if not state.window then return end
  gfx.set(0.12, 0.12, 0.12)
  gfx.rect(0, 0, gfx.w, gfx.h, 1)
  gfx.set(0.9, 0.9, 0.9)
  local y = 8
  for _, line in ipairs(state.lines) do
    gfx.x, gfx.y = 10, y
    gfx.drawstr(line)
    y = y + gfx.texth + 4
  end
  if state.progress then
    gfx.set(0.3, 0.3, 0.3)
    gfx.rect(10, y + 2, gfx.w - 20, 8, 1)
    gfx.set(0.3, 0.75, 0.45)
    gfx.rect(10, y + 2, math.floor((gfx.w - 20) * state.progress), 8, 1)
    y = y + 16
  end
  if state.last_import ~= "" then
    gfx.set(0.6, 0.6, 0.6)
    gfx.x, gfx.y = 10, y + 4
    gfx.drawstr(state.last_import)
  end
  gfx.update()
end

-- set_action_options (REAPER 7): 1 = running the action again terminates this instance,
-- 4 = toggle state on, 8 = toggle state off. Whether a second call keeps the bits of the first is
-- not documented, so every call carries all the bits it needs (1 + 4 together at the start).
local TERMINATE_ON_RERUN, TOGGLE_ON, TOGGLE_OFF = 1, 4, 8

local function set_toggle(on)
  local _, _, section, cmd = reaper.get_action_context()
  if reaper.set_action_options then
    reaper.set_action_options(on and (TERMINATE_ON_RERUN | TOGGLE_ON) or TOGGLE_OFF)
  end
  if cmd and cmd > 0 then
    reaper.SetToggleCommandState(section, cmd, on and 1 or 0)
    reaper.RefreshToolbar2(section, cmd)
  end
end

function L.stop()
  if state.stopped then return end
  state.stopped = true
  set_toggle(false)
  if state.window then gfx.quit() end
end

local function loop()
  if state.stopped then return end
  if state.window and gfx.getchar() < 0 then
    L.stop()
    return
  end
  local now = reaper.time_precise()
  if now - state.last_poll >= L.POLL_S then
    state.last_poll = now
    local ok, err = pcall(L.poll)
    if not ok then report("listener: " .. tostring(err)) end
  end
  draw()
  reaper.defer(loop)
end

--- Start listening (called by the action script).
function L.start()
  set_toggle(true) -- also: run again = stop
  reaper.atexit(L.stop)
  if gfx and gfx.init then
    gfx.init("StemBridge", 420, 110, 0)
    gfx.setfont(1, "Arial", 14)
    state.window = true
  end
  util.log("Listener started: stems will appear on 'SB ...' tracks as the bridge finishes them.")
  loop()
end

L.json = json -- exposed for tests and other scripts

return L
