-- fake_reaper.lua: an in-memory stand-in for REAPER's ReaScript API, for testing the StemBridge
-- scripts under plain lua5.4. It models tracks, items, takes, MIDI notes, sources, regions,
-- tempo/time-signature markers, the time selection, project ext state, the console and gfx.
--
-- Only functions that exist in the real API are provided, with the real argument order and
-- return values; calling anything else raises "fake reaper has no function X", so a script that
-- uses a made-up function fails its test.
--
-- Usage (from a test driver):
--   local fake = require("fake_reaper")
--   local P = fake.install{ project_file = "/tmp/x/song.rpp", tempo = {...}, ... }
--   dofile(".../StemBridge - Generate.lua")
--   print(fake.dump_json())

local fake = {}

local PPQ = 960

local function sorted_copy(list, key)
  local out = {}
  for i, v in ipairs(list) do out[i] = v end
  table.sort(out, function(a, b) return a[key] < b[key] end)
  return out
end

-- ---------------------------------------------------------------------------------------------
-- Tempo map: markers given in quarter notes; times computed like REAPER (no ramps).

local function build_tempo(config)
  local markers = sorted_copy(config.tempo or { { qn = 0, bpm = 120, num = 4, den = 4 } }, "qn")
  local t = 0
  for i, m in ipairs(markers) do
    if i > 1 then
      local p = markers[i - 1]
      t = t + (m.qn - p.qn) * 60 / p.bpm
    end
    m.time = t
  end
  -- metre segments: each time-signature marker starts a new measure
  local segs = {}
  local num, den = 4, 4
  for _, m in ipairs(markers) do
    if (m.num or 0) > 0 then
      num, den = m.num, m.den
      local first = 0
      if #segs > 0 then
        local s = segs[#segs]
        first = s.first + math.ceil((m.qn - s.qn) / s.len - 1e-9)
      end
      segs[#segs + 1] = { qn = m.qn, first = first, len = num * 4 / den, num = num, den = den }
    end
  end
  if #segs == 0 or segs[1].qn > 0 then
    table.insert(segs, 1, { qn = 0, first = 0, len = 4, num = 4, den = 4 })
  end
  return markers, segs
end

local P -- the current fake project

local function marker_at_qn(q)
  local m = P.tempo[1]
  for _, x in ipairs(P.tempo) do if x.qn <= q + 1e-12 then m = x end end
  return m
end

local function marker_at_time(t)
  local m = P.tempo[1]
  for _, x in ipairs(P.tempo) do if x.time <= t + 1e-12 then m = x end end
  return m
end

function fake.qn_to_time(q)
  local m = marker_at_qn(q)
  return m.time + (q - m.qn) * 60 / m.bpm
end

function fake.time_to_qn(t)
  local m = marker_at_time(t)
  return m.qn + (t - m.time) * m.bpm / 60
end

local function seg_at_qn(q)
  local s = P.segs[1]
  for _, x in ipairs(P.segs) do if x.qn <= q + 1e-9 then s = x end end
  return s
end

-- ---------------------------------------------------------------------------------------------
-- Project model

local guid_counter = 0
local function new_guid()
  guid_counter = guid_counter + 1
  return string.format("{00000000-0000-0000-0000-%012d}", guid_counter)
end

local function new_track(name)
  return { name = name or "", guid = new_guid(), items = {} }
end

local function new_take(item, spec)
  spec = spec or {}
  local take = {
    item = item, name = spec.name or "", startoffs = spec.startoffs or 0, playrate = spec.playrate or 1,
    midi = spec.notes ~= nil, notes = {}, source = spec.source,
  }
  if spec.notes then
    local item_qn = fake.time_to_qn(item.pos)
    take.item_qn = item_qn
    for _, n in ipairs(spec.notes) do
      take.notes[#take.notes + 1] = {
        pitch = n.pitch, vel = n.vel or 100, muted = n.muted or false, chan = 0,
        sppq = math.floor(n.start * PPQ + 0.5), eppq = math.floor((n.start + n.len) * PPQ + 0.5),
      }
    end
    take.source = take.source or { midi = true, length = spec.source_len or 0, is_qn = true }
  end
  return take
end

local function new_item(track, spec)
  local item = { track = track, pos = spec.pos or 0, len = spec.len or 1, loop = spec.loop or 0,
    selected = spec.selected or false, takes = {}, active = 1 }
  for _, t in ipairs(spec.takes or {}) do item.takes[#item.takes + 1] = new_take(item, t) end
  return item
end

function fake.install(config)
  P = {
    file = config.project_file or "",
    srate_use = config.srate_use or 0, srate = config.srate or 0, device_srate = config.device_srate or 44100,
    tracks = {}, regions = {}, ext = {}, console = {}, boxes = {}, undo = {}, inputs = config.inputs or {},
    input_log = {}, timesel = config.time_selection, cursor = config.cursor or 0,
    deferred = {}, atexit = {}, now = 1000.0, toggles = {}, frames = {}, frame = {}, refresh = 0,
    action_options = {},
  }
  P.tempo, P.segs = build_tempo(config)
  P.no_markers = config.no_markers or false
  for k, v in pairs(config.ext or {}) do P.ext[k] = v end
  for _, r in ipairs(config.regions or {}) do
    P.regions[#P.regions + 1] = { isrgn = r.isrgn ~= false, pos = r.pos, rgnend = r.rgnend or r.pos, name = r.name or "", index = #P.regions + 1 }
  end
  for _, tspec in ipairs(config.tracks or {}) do
    local track = new_track(tspec.name)
    if tspec.guid then track.guid = tspec.guid end
    for _, ispec in ipairs(tspec.items or {}) do track.items[#track.items + 1] = new_item(track, ispec) end
    P.tracks[#P.tracks + 1] = track
  end
  _G.reaper = fake.api()
  _G.gfx = fake.gfx()
  return P
end

function fake.project() return P end

-- ---------------------------------------------------------------------------------------------
-- The API

local function selected_items()
  local out = {}
  for _, tr in ipairs(P.tracks) do
    for _, it in ipairs(tr.items) do if it.selected then out[#out + 1] = it end end
  end
  return out
end

local function track_index(track)
  for i, t in ipairs(P.tracks) do if t == track then return i end end
  return nil
end

local api = {}

function api.ShowConsoleMsg(msg) P.console[#P.console + 1] = msg end
function api.ShowMessageBox(msg, title, _) P.boxes[#P.boxes + 1] = { msg = msg, title = title } return 1 end
function api.EnumProjects(idx, _) if idx == -1 then return P, P.file end return nil, "" end
function api.GetProjExtState(_, section, key)
  local v = P.ext[section .. "/" .. key]
  if v == nil then return 0, "" end
  return 1, v
end
function api.SetProjExtState(_, section, key, value)
  P.ext[section .. "/" .. key] = (value ~= "") and value or nil
  return 1
end
function api.RecursiveCreateDirectory(path, _)
  os.execute('mkdir -p "' .. path .. '"')
  return 1
end
function api.EnumerateFiles(path, index)
  if index < 0 then return nil end
  local names = {}
  local pipe = io.popen('ls -1p "' .. path .. '" 2>/dev/null')
  for line in pipe:lines() do if line:sub(-1) ~= "/" then names[#names + 1] = line end end
  pipe:close()
  table.sort(names)
  return names[index + 1]
end
function api.time_precise() return P.now end
function api.GetSetProjectInfo(_, desc, value, is_set)
  local key = ({ PROJECT_SRATE = "srate", PROJECT_SRATE_USE = "srate_use" })[desc]
  if not key then error("fake GetSetProjectInfo: unsupported " .. desc) end
  if is_set then P[key] = value end
  return P[key]
end
function api.GetAudioDeviceInfo(attr)
  if attr == "SRATE" then return true, tostring(P.device_srate) end
  return false, ""
end
function api.GetProjectTimeSignature2(_)
  local m = P.tempo[1]
  return m.bpm, (m.num and m.num > 0) and m.num or 4
end
-- config.no_markers: the one tempo entry is the project setting, not a marker (as in a new project).
function api.CountTempoTimeSigMarkers(_) return P.no_markers and 0 or #P.tempo end
function api.GetTempoTimeSigMarker(_, idx)
  local m = not P.no_markers and P.tempo[idx + 1] or nil
  if not m then return false, -1, 0, 0, 0, 0, 0, false end
  local s = seg_at_qn(m.qn)
  local measure = s.first + math.floor((m.qn - s.qn) / s.len + 1e-9)
  local beat = (m.qn - (s.qn + (measure - s.first) * s.len)) * s.den / 4
  return true, m.time, measure, beat, m.bpm, m.num or 0, m.den or 0, m.linear or false
end
function api.TimeMap_GetTimeSigAtTime(_, t)
  local s = seg_at_qn(fake.time_to_qn(t))
  return s.num, s.den, marker_at_time(t).bpm
end
function api.TimeMap2_timeToQN(_, t) return fake.time_to_qn(t) end
function api.TimeMap2_QNToTime(_, q) return fake.qn_to_time(q) end
function api.TimeMap2_timeToBeats(_, t)
  local q = fake.time_to_qn(t)
  local s = seg_at_qn(q)
  local rel = (q - s.qn) / s.len
  local k = math.floor(rel + 1e-9)
  local measure = s.first + k
  local beats = (q - (s.qn + k * s.len)) * s.den / 4
  if beats < 0 then beats = 0 end
  return beats, measure, s.num, q * s.den / 4, s.den
end
function api.EnumProjectMarkers3(_, idx)
  local list = sorted_copy(P.regions, "pos")
  local r = list[idx + 1]
  if not r then return 0, false, 0, 0, "", 0, 0 end
  return idx + 1, r.isrgn, r.pos, r.rgnend, r.name, r.index, 0
end
function api.GetSet_LoopTimeRange2(_, is_set, _, s, e, _)
  if is_set then P.timesel = { s, e } end
  if not P.timesel then return 0, 0 end
  return P.timesel[1], P.timesel[2]
end
function api.GetCursorPosition() return P.cursor end

function api.CountSelectedMediaItems(_) return #selected_items() end
function api.GetSelectedMediaItem(_, idx) return selected_items()[idx + 1] end
function api.GetActiveTake(item) return item.takes[item.active] end
function api.TakeIsMIDI(take) return take.midi end
function api.GetMediaItem_Track(item) return item.track end
function api.GetMediaItemTake_Source(take) return take.source end
function api.GetMediaSourceFileName(src) return src.file or "" end
function api.GetMediaSourceLength(src) return src.length or 0, src.is_qn or false end
function api.MIDI_CountEvts(take) return #take.notes, #take.notes, 0, 0 end
function api.MIDI_GetNote(take, idx)
  local n = take.notes[idx + 1]
  if not n then return false, false, false, 0, 0, 0, 0, 0 end
  return true, false, n.muted, n.sppq, n.eppq, n.chan, n.pitch, n.vel
end
function api.MIDI_GetProjQNFromPPQPos(take, ppq) return take.item_qn + ppq / PPQ end

local ITEM_FIELDS = { D_POSITION = "pos", D_LENGTH = "len", B_LOOPSRC = "loop" }
function api.GetMediaItemInfo_Value(item, key)
  local f = ITEM_FIELDS[key] or error("fake: item field " .. key)
  return item[f]
end
function api.SetMediaItemInfo_Value(item, key, value)
  local f = ITEM_FIELDS[key] or error("fake: item field " .. key)
  item[f] = value
  return true
end
local TAKE_FIELDS = { D_STARTOFFS = "startoffs", D_PLAYRATE = "playrate" }
function api.GetMediaItemTakeInfo_Value(take, key) return take[TAKE_FIELDS[key] or error("fake: take field " .. key)] end
function api.SetMediaItemTakeInfo_Value(take, key, value)
  take[TAKE_FIELDS[key] or error("fake: take field " .. key)] = value
  return true
end
function api.GetSetMediaItemTakeInfo_String(take, key, value, set)
  if key ~= "P_NAME" then error("fake: take string " .. key) end
  if set then take.name = value end
  return true, take.name
end

function api.CountTracks(_) return #P.tracks end
function api.GetTrack(_, idx) return P.tracks[idx + 1] end
function api.InsertTrackAtIndex(idx, _) table.insert(P.tracks, idx + 1, new_track("")) end
function api.GetSetMediaTrackInfo_String(track, key, value, set)
  if key ~= "P_NAME" then error("fake: track string " .. key) end
  if set then track.name = value end
  return true, track.name
end
function api.GetTrackGUID(track) return track.guid end
function api.GetMediaTrackInfo_Value(track, key)
  if key == "IP_TRACKNUMBER" then return track_index(track) end
  error("fake: track field " .. key)
end
function api.CountTrackMediaItems(track) return #track.items end
function api.GetTrackMediaItem(track, idx) return track.items[idx + 1] end
function api.AddMediaItemToTrack(track)
  local item = new_item(track, { pos = 0, len = 0 })
  item.active = 0
  track.items[#track.items + 1] = item
  return item
end
function api.AddTakeToMediaItem(item)
  local take = new_take(item, {})
  item.takes[#item.takes + 1] = take
  if item.active == 0 then item.active = 1 end
  return take
end
function api.PCM_Source_CreateFromFile(path)
  local fh = io.open(path, "rb")
  if not fh then return nil end
  fh:close()
  return { file = path }
end
function api.SetMediaItemTake_Source(take, src) take.source = src return true end
function api.SetActiveTake(take)
  for i, t in ipairs(take.item.takes) do if t == take then take.item.active = i end end
end
function api.Undo_BeginBlock2(_) P.undo[#P.undo + 1] = { open = true } end
function api.Undo_EndBlock2(_, desc, flags)
  local u = P.undo[#P.undo]
  if not u or not u.open then error("fake: Undo_EndBlock2 without Undo_BeginBlock2") end
  u.open, u.desc, u.flags = false, desc, flags
end
function api.PreventUIRefresh(n) P.refresh = P.refresh + n end
function api.UpdateArrangement() end
function api.GetUserInputs(title, num, captions, defaults)
  P.input_log[#P.input_log + 1] = { title = title, num = num, captions = captions, defaults = defaults }
  local answer = table.remove(P.inputs, 1)
  if answer == false then return false, "" end
  if answer == nil then return true, defaults end
  return true, answer
end
function api.get_action_context() return false, P.script or "", 0, 55555, -1, -1, -1 end
function api.set_action_options(flags) P.action_options[#P.action_options + 1] = flags end
function api.SetToggleCommandState(section, cmd, state) P.toggles[section .. ":" .. cmd] = state return true end
function api.RefreshToolbar2(_, _) end
function api.defer(fn) P.deferred[#P.deferred + 1] = fn return true end
function api.atexit(fn) P.atexit[#P.atexit + 1] = fn end

function fake.api()
  return setmetatable({}, {
    __index = function(_, name)
      local f = api[name]
      if f == nil then error("fake reaper has no function " .. tostring(name), 2) end
      return f
    end,
    __newindex = function() error("scripts must not assign into reaper", 2) end,
  })
end

function fake.gfx()
  local g = { w = 420, h = 110, texth = 14, x = 0, y = 0, open = false }
  function g.init() g.open = true return 1 end
  function g.setfont() return 1 end
  function g.set() end
  function g.rect(x, y, w, h, _) P.frame[#P.frame + 1] = { rect = { x, y, w, h } } end
  function g.drawstr(s) P.frame[#P.frame + 1] = { text = s } end
  function g.update() P.frames[#P.frames + 1] = P.frame P.frame = {} end
  function g.getchar() return g.open and 0 or -1 end
  function g.quit() g.open = false end
  return g
end

--- Run deferred callbacks for `steps` timer ticks, advancing the clock by `dt` seconds each.
function fake.run_deferred(steps, dt)
  for _ = 1, steps do
    P.now = P.now + (dt or 0.5)
    local pending = P.deferred
    P.deferred = {}
    for _, fn in ipairs(pending) do fn() end
  end
end

function fake.exit()
  for _, fn in ipairs(P.atexit) do fn() end
end

-- ---------------------------------------------------------------------------------------------
-- Dump for assertions (JSON through the scripts' own encoder)

function fake.dump()
  local json = require("stembridge_json")
  local tracks = {}
  for _, tr in ipairs(P.tracks) do
    local items = {}
    for _, it in ipairs(tr.items) do
      local takes = {}
      for _, tk in ipairs(it.takes) do
        takes[#takes + 1] = { name = tk.name, file = tk.source and tk.source.file or json.null, startoffs = tk.startoffs }
      end
      items[#items + 1] = { pos = it.pos, len = it.len, active = it.active, takes = json.array(takes) }
    end
    tracks[#tracks + 1] = { name = tr.name, items = json.array(items) }
  end
  local texts = {}
  local last = P.frames[#P.frames] or {}
  for _, e in ipairs(last) do if e.text then texts[#texts + 1] = e.text end end
  local undo = {}
  for _, u in ipairs(P.undo) do undo[#undo + 1] = { desc = u.desc or json.null, open = u.open } end
  local ext = {}
  for k, v in pairs(P.ext) do ext[k] = v end
  local toggles = {}
  for k, v in pairs(P.toggles) do toggles[k] = v end
  return {
    tracks = json.array(tracks), console = table.concat(P.console), boxes = json.array(P.boxes),
    undo = json.array(undo), ext = json.object(ext), frame_text = json.array(texts),
    toggles = json.object(toggles), refresh = P.refresh, deferred = #P.deferred,
    inputs_asked = json.array(P.input_log),
  }
end

function fake.dump_json()
  return require("stembridge_json").encode(fake.dump())
end

return fake
