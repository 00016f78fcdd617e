-- fake_reaper.lua: an in-memory stand-in for REAPER's ReaScript API, for testing the StemBridge
-- scripts under plain lua5.4. It models tracks, items, takes, MIDI notes, sources, regions,
-- tempo/time-signature markers, the time selection, project ext state, the console and gfx.
--
-- The API is held to REAPER's own list (reference/reascript_api.txt, one function a line with its
-- parameters and return values): a name REAPER does not have raises "REAPER has no function X";
-- a call with a missing required argument, an argument of the wrong type or too many arguments
-- raises; and every fake function must return as many values as REAPER does. A function REAPER
-- has but this fake does not model raises "fake REAPER does not model X" (extend the fake).
-- GetUserInputs splits its captions on commas as REAPER does (separator= only applies to the
-- values), and set_action_options can model either reading of repeated calls.
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
  -- metre segments. REAPER: a time-signature marker starts a new measure; one placed off a bar
  -- line ends the measure before it early (a partial measure). config.timesig_off_bar = "continue"
  -- models the other reading (the partial measure is not counted), to check the scripts do not
  -- depend on which one REAPER applies.
  local continue_mode = config.timesig_off_bar == "continue"
  local segs = {}
  local num, den = 4, 4
  for _, m in ipairs(markers) do
    if (m.num or 0) > 0 then
      num, den = m.num, m.den
      local first = 0
      if #segs > 0 then
        local s = segs[#segs]
        local elapsed = (m.qn - s.qn) / s.len
        first = s.first + (continue_mode and math.floor(elapsed + 1e-9) or math.ceil(elapsed - 1e-9))
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

--- Raise a misuse of REAPER's API, and remember it: a script's pcall may swallow the error, the
-- test driver still sees it in the dump (api_errors) and fails.
local function misuse(message)
  P.api_errors[#P.api_errors + 1] = message
  error(message, 3)
end

--- A parameter name (D_POSITION, P_NAME, ...) this fake does not model: a misspelt name or a
-- field the scripts were never meant to touch. REAPER would quietly give 0 or false.
local function unmodelled(what, key)
  misuse(string.format("the fake does not model %s %s (REAPER would return 0 or false for an unknown name)", what, tostring(key)))
end

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

--- The kind of every handle the fake gives out (weak keys): REAPER checks a pointer's type, so
-- a MediaItem passed where a MediaTrack is expected is refused, not quietly read as one.
local KIND = setmetatable({}, { __mode = "k" })
local function handle(kind, object)
  if object ~= nil then KIND[object] = kind end
  return object
end

local function new_track(name)
  return handle("MediaTrack", { name = name or "", guid = new_guid(), items = {} })
end

local function new_take(item, spec)
  spec = spec or {}
  local take = {
    item = item, name = spec.name or "", startoffs = spec.startoffs or 0, playrate = spec.playrate or 1,
    midi = spec.notes ~= nil, notes = {}, source = spec.source,
  }
  if spec.notes then
    -- PPQ 0 is where the MIDI source starts: the item start minus the take's start offset (s).
    local item_qn = fake.time_to_qn(item.pos - take.startoffs)
    take.item_qn = item_qn
    for _, n in ipairs(spec.notes) do
      take.notes[#take.notes + 1] = {
        pitch = n.pitch, vel = n.vel or 100, muted = n.muted or false, chan = 0,
        sppq = math.floor(n.start * PPQ + 0.5), eppq = math.floor((n.start + n.len) * PPQ + 0.5),
      }
    end
    take.source = take.source or { midi = true, length = spec.source_len or 0, is_qn = true }
  end
  handle("PCM_source", take.source)
  return handle("MediaItem_Take", take)
end

local function new_item(track, spec)
  local item = { track = track, pos = spec.pos or 0, len = spec.len or 1, loop = spec.loop or 0,
    selected = spec.selected or false, takes = {}, active = 1 }
  for _, t in ipairs(spec.takes or {}) do item.takes[#item.takes + 1] = new_take(item, t) end
  return handle("MediaItem", item)
end

function fake.install(config)
  P = {
    file = config.project_file or "",
    srate_use = config.srate_use or 0, srate = config.srate or 0, device_srate = config.device_srate or 44100,
    tracks = {}, regions = {}, ext = {}, console = {}, boxes = {}, undo = {}, inputs = config.inputs or {},
    input_log = {}, timesel = config.time_selection, cursor = config.cursor or 0,
    deferred = {}, atexit = {}, now = 1000.0, toggles = {}, frames = {}, frame = {}, refresh = 0,
    action_options = {}, action_flags = 0, action_options_mode = config.action_options_mode or "replace",
    calls = {}, broken = {}, api_errors = {}, undecodable = config.undecodable or {},
  }
  handle("ReaProject", P)
  P.tempo, P.segs = build_tempo(config)
  P.no_markers = config.no_markers or false
  for k, v in pairs(config.ext or {}) do P.ext[k] = v end
  -- REAPER numbers markers and regions separately (marker 1, 2, ...; region 1, 2, ...).
  local numbers = { [true] = 0, [false] = 0 }
  for _, r in ipairs(config.regions or {}) do
    local isrgn = r.isrgn ~= false
    numbers[isrgn] = numbers[isrgn] + 1
    P.regions[#P.regions + 1] = { isrgn = isrgn, pos = r.pos, rgnend = r.rgnend or r.pos, name = r.name or "", index = numbers[isrgn] }
  end
  for _, tspec in ipairs(config.tracks or {}) do
    local track = new_track(tspec.name)
    if tspec.guid then track.guid = tspec.guid end
    for _, ispec in ipairs(tspec.items or {}) do track.items[#track.items + 1] = new_item(track, ispec) end
    P.tracks[#P.tracks + 1] = track
  end
  _G.reaper = fake.api(config.absent)
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
function api.EnumProjects(idx) if idx == -1 then return P, P.file end return nil, "" end
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
  if not key then unmodelled("GetSetProjectInfo parameter", desc) end
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
  local f = ITEM_FIELDS[key] or unmodelled("item field", key)
  return item[f]
end
function api.SetMediaItemInfo_Value(item, key, value)
  local f = ITEM_FIELDS[key] or unmodelled("item field", key)
  item[f] = value
  return true
end
local TAKE_FIELDS = { D_STARTOFFS = "startoffs", D_PLAYRATE = "playrate" }
function api.GetMediaItemTakeInfo_Value(take, key) return take[TAKE_FIELDS[key] or unmodelled("take field", key)] end
function api.SetMediaItemTakeInfo_Value(take, key, value)
  take[TAKE_FIELDS[key] or unmodelled("take field", key)] = value
  return true
end
function api.GetSetMediaItemTakeInfo_String(take, key, value, set)
  if key ~= "P_NAME" then unmodelled("take string", key) end
  if set then take.name = value end
  return true, take.name
end

function api.CountTracks(_) return #P.tracks end
function api.GetTrack(_, idx) return P.tracks[idx + 1] end
function api.InsertTrackAtIndex(idx, _) table.insert(P.tracks, idx + 1, new_track("")) end
function api.GetSetMediaTrackInfo_String(track, key, value, set)
  if key ~= "P_NAME" then unmodelled("track string", key) end
  if set then track.name = value end
  return true, track.name
end
function api.GetTrackGUID(track) return track.guid end
function api.GetMediaTrackInfo_Value(track, key)
  if key == "IP_TRACKNUMBER" then return track_index(track) end
  unmodelled("track field", key)
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
  for _, name in ipairs(P.undecodable) do -- config.undecodable: file names REAPER cannot decode
    if path:sub(-#name - 1) == "/" .. name then fh:close() return nil end
  end
  fh:close()
  return handle("PCM_source", { file = path })
end
function api.SetMediaItemTake_Source(take, src) take.source = src return true end
function api.SetActiveTake(take)
  for i, t in ipairs(take.item.takes) do if t == take then take.item.active = i end end
end
function api.Undo_BeginBlock2(_) P.undo[#P.undo + 1] = { open = true } end
function api.Undo_EndBlock2(_, desc, flags)
  local u = P.undo[#P.undo]
  if not u or not u.open then misuse("reaper.Undo_EndBlock2 without an open Undo_BeginBlock2") end
  u.open, u.desc, u.flags = false, desc, flags
end
function api.PreventUIRefresh(n) P.refresh = P.refresh + n end
function api.UpdateArrange() P.arrange_updates = (P.arrange_updates or 0) + 1 end

local function split_plain(s, sep)
  local out, start = {}, 1
  while true do
    local i = s:find(sep, start, true)
    if not i then out[#out + 1] = s:sub(start) return out end
    out[#out + 1] = s:sub(start, i - 1)
    start = i + #sep
  end
end

-- REAPER splits captions_csv on commas, always; "separator=X" (the character after "=") and
-- "extrawidth=N" are options among the captions, and the separator only splits the values.
function api.GetUserInputs(title, num, captions_csv, retvals_csv)
  local captions, sep = {}, ","
  for _, field in ipairs(split_plain(captions_csv, ",")) do
    if field:sub(1, 10) == "separator=" then
      sep = field:sub(11, 11)
    elseif field:sub(1, 11) ~= "extrawidth=" then
      captions[#captions + 1] = field
    end
  end
  if #captions ~= num then
    local msg = string.format("GetUserInputs %q: REAPER splits the captions on commas into %d labels for %d "
      .. "boxes (%s)", title, #captions, num, table.concat(captions, " | "))
    P.api_errors[#P.api_errors + 1] = msg
    error(msg, 2)
  end
  local defaults = split_plain(retvals_csv, sep)
  if #defaults > num then
    error(string.format("GetUserInputs %q: %d default values for %d boxes", title, #defaults, num), 2)
  end
  P.input_log[#P.input_log + 1] = { title = title, num = num, captions = captions, defaults = retvals_csv }
  local answer = table.remove(P.inputs, 1)
  if answer == false then return false, "" end
  if answer == nil then return true, retvals_csv end
  if #split_plain(answer, sep) ~= num then
    error(string.format("test answer %q to %q does not have %d values split by %q", answer, title, num, sep), 2)
  end
  return true, answer
end
function api.get_action_context() return false, P.script or "", 0, 55555, -1, -1, 0, "" end
-- REAPER 7: 1 = on re-launch terminate the running instance, 2 = allow a second instance,
-- 4 = toggle state on, 8 = toggle state off. Whether a later call keeps the bits of an earlier
-- one is not documented: "replace" (each call sets the flags) or "merge" (bits accumulate).
function api.set_action_options(flag)
  P.action_options[#P.action_options + 1] = flag
  local relaunch = flag & 3
  if P.action_options_mode == "replace" then
    P.action_flags = flag
  else
    if relaunch ~= 0 then P.action_flags = (P.action_flags & ~3) | relaunch end
    if flag & 12 ~= 0 then P.action_flags = (P.action_flags & ~12) | (flag & 12) end
  end
end
function api.SetToggleCommandState(section, cmd, state) P.toggles[section .. ":" .. cmd] = state return true end
function api.RefreshToolbar2(_, _) end
function api.defer(fn) P.deferred[#P.deferred + 1] = fn return true end
function api.atexit(fn) P.atexit[#P.atexit + 1] = fn return true end

-- ---------------------------------------------------------------------------------------------
-- REAPER's function list: every call is checked against it

local HERE = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or "./"
fake.API_FILE = HERE .. "reference/reascript_api.txt"

local function parse_types(text)
  local out = {}
  for part in (text or ""):gmatch("[^,]+") do
    local t = part:match("^%s*(.-)%s*$")
    if t ~= "" then out[#out + 1] = { type = t:gsub("%?$", ""), optional = t:sub(-1) == "?" } end
  end
  return out
end

--- {name = {params = {{name, type, optional}}, returns = {{type, optional}}}} from api.txt.
function fake.load_spec(path)
  local spec = {}
  for line in io.lines(path or fake.API_FILE) do
    local name, params, rest = line:match("^([%w_%.]+)%((.-)%)(.*)$")
    if name then
      local entry = { params = {}, returns = parse_types(rest:match("^%s*%->%s*(.*)$")) }
      for part in params:gmatch("[^,]+") do
        local pname, ptype = part:match("^%s*([%w_]+)%s*:%s*(.-)%s*$")
        if not pname then error("cannot read parameter '" .. part .. "' of " .. name .. " in " .. tostring(path)) end
        entry.params[#entry.params + 1] = { name = pname, type = ptype:gsub("%?$", ""), optional = ptype:sub(-1) == "?" }
      end
      spec[name] = entry
    end
  end
  return spec
end

--- Whether an api.txt type is an object handle (not a scalar, a function or a parameter name).
local function is_handle_type(spec_type)
  for alt in spec_type:gmatch("[^|]+") do
    local scalar = alt == "nil" or alt == "0" or alt == "integer" or alt == "number" or alt == "boolean"
      or alt == "string" or alt == "function" or alt:match("_Param$") ~= nil
    if not scalar then return true end
  end
  return false
end

local function type_ok(value, spec_type)
  for alt in spec_type:gmatch("[^|]+") do
    if alt == "nil" then
      if value == nil then return true end
    elseif alt == "0" then
      if value == 0 then return true end
    elseif alt == "integer" then
      if math.type(value) == "integer" or (type(value) == "number" and value == math.floor(value)) then return true end
    elseif alt == "number" then
      if type(value) == "number" then return true end
    elseif alt == "boolean" then
      if type(value) == "boolean" then return true end
    elseif alt == "string" or alt:match("_Param$") then
      if type(value) == "string" then return true end
    elseif alt == "function" then
      if type(value) == "function" then return true end
    elseif value ~= nil and KIND[value] == alt then
      return true -- an object handle of that kind (MediaTrack, MediaItem, ReaProject, PCM_source, ...)
    end
  end
  return false
end


local function checked(name, entry, impl)
  local params, returns = entry.params, entry.returns
  local needed_returns = 0
  for _, r in ipairs(returns) do if not r.optional then needed_returns = needed_returns + 1 end end
  return function(...)
    local n = select("#", ...)
    if n > #params then
      misuse(string.format("reaper.%s takes %d argument(s), the script passed %d", name, #params, n))
    end
    for i, p in ipairs(params) do
      local v = select(i, ...)
      if v == nil and i > n and not p.optional and not type_ok(nil, p.type) then
        misuse(string.format("reaper.%s: missing required argument %d (%s: %s)", name, i, p.name, p.type))
      end
      if not (v == nil and p.optional) and not type_ok(v, p.type) then
        misuse(string.format("reaper.%s: argument %d (%s) must be %s, got %s", name, i, p.name, p.type,
          v == nil and "nil" or math.type(v) or type(v)))
      end
    end
    P.calls[name] = (P.calls[name] or 0) + 1
    local broken = P.broken[name]
    if broken and P.calls[name] > broken.after then error(broken.message, 2) end
    local out = table.pack(impl(...))
    if out.n < needed_returns or out.n > #returns then
      error(string.format("fake reaper.%s returned %d value(s); REAPER returns %d", name, out.n, #returns), 2)
    end
    for i = 1, out.n do
      local r, v = returns[i], out[i]
      -- nil is what REAPER gives for a handle that does not exist (GetTrack past the last
      -- track) and at the end of an Enumerate* listing
      local may_be_nil = r.optional or is_handle_type(r.type) or name:match("^Enumerate") ~= nil
      if not ((v == nil and may_be_nil) or type_ok(v, r.type)) then
        error(string.format("fake reaper.%s return %d is %s; REAPER returns %s", name, i,
          v == nil and "nil" or math.type(v) or type(v), r.type), 2)
      end
    end
    return table.unpack(out, 1, out.n)
  end
end

local SPEC = nil

--- The reaper table. `absent`: names an older REAPER lacks (e.g. REAPER 6 has no
-- set_action_options); REAPER gives nil for them, so a script can test for them.
function fake.api(absent)
  local missing = {}
  for _, name in ipairs(absent or {}) do missing[name] = true end
  SPEC = SPEC or fake.load_spec()
  for name in pairs(api) do
    if not SPEC[name] then error("fake_reaper.lua models reaper." .. name .. ", which REAPER does not have") end
  end
  local wrapped = {}
  return setmetatable({}, {
    __index = function(_, name)
      if missing[name] then return nil end
      local entry = SPEC[name]
      if entry == nil then
        P.api_errors[#P.api_errors + 1] = "REAPER has no function reaper." .. tostring(name)
        error(P.api_errors[#P.api_errors], 2)
      end
      local f = api[name]
      if f == nil then
        P.api_errors[#P.api_errors + 1] = "fake REAPER does not model reaper." .. tostring(name) .. " (extend fake_reaper.lua)"
        error(P.api_errors[#P.api_errors], 2)
      end
      wrapped[name] = wrapped[name] or checked(name, entry, f)
      return wrapped[name]
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

--- Make reaper.<name> raise `message` on every call after the first `after` calls (a REAPER
-- error in the middle of a script, e.g. a file REAPER cannot read).
function fake.break_function(name, after, message)
  P.broken[name] = { after = after, message = message or ("reaper." .. name .. " failed") }
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
    inputs_asked = json.array(P.input_log), action_flags = P.action_flags, api_errors = json.array(P.api_errors),
    action_options = json.array(P.action_options), arrange_updates = P.arrange_updates or 0,
  }
end

function fake.dump_json()
  return require("stembridge_json").encode(fake.dump())
end

return fake
