-- stembridge_request.lua: gather what the musician selected in REAPER into a request v1 table.
--
-- Positions are read in REAPER's own units: notes as project quarter notes (QN = beats, exact,
-- through MIDI_GetProjQNFromPPQPos), regions and the time selection as seconds converted with
-- REAPER's tempo map. The bridge does all further maths (bars -> seconds -> samples).

local json = require("stembridge_json")
local util = require("stembridge_util")

local R = {}

local EPS_BEATS = 1e-4

-- ---------------------------------------------------------------------------------------------
-- Tempo map, bars, sample rate

--- The project's tempo map as request v1 points {beat, bpm, time_signature}, and whether it has
-- gradual tempo changes (ramps).
function R.tempo_points(proj)
  local points = {}
  -- The metre at the start, denominator included (GetProjectTimeSignature2 gives only the
  -- numerator, which would turn a 6/8 project without markers into 6/4).
  local num0, den0, bpm0 = reaper.TimeMap_GetTimeSigAtTime(proj, 0)
  num0 = math.tointeger(math.floor(num0 + 0.5)) or 4
  den0 = math.tointeger(math.floor(den0 + 0.5)) or 4
  local num, den = num0, den0
  local linear = false
  local count = reaper.CountTempoTimeSigMarkers(proj)
  for i = 0, count - 1 do
    local ok, timepos, _, _, bpm, ts_num, ts_den, lineartempo = reaper.GetTempoTimeSigMarker(proj, i)
    if ok then
      if ts_num and ts_num > 0 then num, den = ts_num, ts_den end -- 0: metre unchanged
      if lineartempo then linear = true end
      points[#points + 1] = {
        beat = util.int_if_whole(reaper.TimeMap2_timeToQN(proj, timepos), 1e-7),
        bpm = util.int_if_whole(bpm, 1e-9),
        time_signature = json.array({ math.tointeger(num) or math.floor(num), math.tointeger(den) or math.floor(den) }),
      }
    end
  end
  if #points == 0 or points[1].beat > 0 then
    -- No marker at the start: the project's tempo and metre hold there.
    table.insert(points, 1, {
      beat = 0,
      bpm = util.int_if_whole(bpm0, 1e-9),
      time_signature = json.array({ num0, den0 }),
    })
  end
  return json.array(points), linear
end

--- The tempo map for a request (notes ramps in the console).
function R.tempo_map(proj)
  local points, linear = R.tempo_points(proj)
  if linear then
    util.log("Note: the tempo map has gradual tempo changes (ramps). StemBridge treats each "
      .. "tempo marker as a step; stems may drift against ramps.")
  end
  return points
end

--- The bar grid of the tempo map: segments {qn, first_bar, len (quarter notes per bar)}, or nil
-- and a message when a time-signature change is not on a bar line.
--
-- Bars are counted here from quarter notes (TimeMap2_timeToQN, unambiguous) with the bridge's
-- own rule, not read from TimeMap2_timeToBeats: REAPER's docs do not say how it counts measures
-- across a time-signature marker placed off a bar line, and the bridge refuses such a change, so
-- the musician is told to move it before anything is sent.
function R.bar_grid(proj)
  local points = R.tempo_points(proj)
  local first = points[1].time_signature
  local segs = { { qn = 0, first_bar = 1, len = first[1] * 4 / first[2], num = first[1], den = first[2] } }
  for i = 2, #points do
    local p, seg = points[i], segs[#segs]
    local num, den = p.time_signature[1], p.time_signature[2]
    if num ~= seg.num or den ~= seg.den then
      local bars = (p.beat - seg.qn) / seg.len
      local whole = math.floor(bars + 0.5)
      if math.abs(bars - whole) * seg.len > EPS_BEATS then
        local bar = seg.first_bar + math.floor(bars)
        return nil, string.format("The time signature change to %d/%d sits inside bar %d (%g quarter notes "
          .. "after its start). StemBridge counts bars like a score: move the time signature marker to "
          .. "the start of a bar, then run this again.", num, den, bar, (bars - math.floor(bars)) * seg.len)
      end
      segs[#segs + 1] = { qn = p.beat, first_bar = seg.first_bar + whole, len = num * 4 / den, num = num, den = den }
    end
  end
  return segs
end

--- 1-based bar position of a time in seconds (fractional inside a bar); raises when the bar
-- grid is not valid (see R.bar_grid).
function R.bar_at(proj, t)
  local segs, err = R.bar_grid(proj)
  if not segs then error(err, 0) end
  local q = reaper.TimeMap2_timeToQN(proj, t)
  local seg = segs[1]
  for _, s in ipairs(segs) do if s.qn <= q + EPS_BEATS then seg = s end end
  local bars = (q - seg.qn) / seg.len
  local whole = math.floor(bars + 0.5)
  if math.abs(bars - whole) * seg.len < EPS_BEATS then bars = whole end
  return seg.first_bar + bars
end

--- The bar containing t (1-based, whole).
function R.bar_floor(proj, t)
  return math.tointeger(math.floor(R.bar_at(proj, t) + 1e-9))
end

--- The first bar line at or after t, as a 1-based bar number (for exclusive ends).
function R.bar_ceil(proj, t)
  return math.tointeger(math.ceil(R.bar_at(proj, t) - 1e-9))
end

function R.sample_rate(proj)
  if reaper.GetSetProjectInfo(proj, "PROJECT_SRATE_USE", 0, false) >= 1 then
    local sr = reaper.GetSetProjectInfo(proj, "PROJECT_SRATE", 0, false)
    if sr and sr > 0 then return math.tointeger(math.floor(sr + 0.5)) end
  end
  local ok, desc = reaper.GetAudioDeviceInfo("SRATE")
  local sr = ok and tonumber(desc)
  if sr and sr > 0 then return math.tointeger(math.floor(sr + 0.5)) end
  return 48000
end

-- ---------------------------------------------------------------------------------------------
-- Sections

local function section_entry(proj, name, t0, t1)
  local b0, b1 = R.bar_at(proj, t0), R.bar_at(proj, t1)
  local whole0, whole1 = util.int_if_whole(b0, 1e-6), util.int_if_whole(b1, 1e-6)
  if math.type(whole0) == "integer" and math.type(whole1) == "integer" then
    return { name = name, start_bar = whole0, end_bar = whole1 }
  end
  -- Off the bar grid: send exact beats and let the bridge place the bars.
  return {
    name = name,
    start_beat = reaper.TimeMap2_timeToQN(proj, t0),
    end_beat = reaper.TimeMap2_timeToQN(proj, t1),
  }
end

--- Regions as {name, t0, t1} sorted by start (seconds).
function R.regions(proj)
  local out = {}
  local i = 0
  while true do
    local retval, isrgn, pos, rgnend, name, index = reaper.EnumProjectMarkers3(proj, i)
    if retval == 0 then break end
    if isrgn and rgnend > pos then
      if not name or name == "" then name = "Region " .. tostring(index) end
      out[#out + 1] = { name = name, t0 = pos, t1 = rgnend }
    end
    i = i + 1
  end
  table.sort(out, function(a, b) return a.t0 < b.t0 end)
  return out
end

--- The time selection as t0, t1 (seconds), or nil when there is none.
function R.time_selection(proj)
  local t0, t1 = reaper.GetSet_LoopTimeRange2(proj, false, false, 0, 0, false)
  if t1 and t0 and t1 - t0 > 1e-6 then return t0, t1 end
  return nil
end

--- Sections for a request: every region, or else the time selection as one section.
-- Returns the sections array and the {name,t0,t1} spans, or nil plus a message.
function R.sections(proj)
  local spans = R.regions(proj)
  if #spans == 0 then
    local t0, t1 = R.time_selection(proj)
    if not t0 then
      return nil, "Mark your song sections as regions (Shift+R on a time selection), or make a "
        .. "time selection to generate one section."
    end
    spans = { { name = "Selection", t0 = t0, t1 = t1 } }
  end
  local seen = {}
  for _, s in ipairs(spans) do
    if seen[s.name] then
      return nil, "Two regions are named '" .. s.name .. "'. Give each section its own name "
        .. "(e.g. 'Chorus 1', 'Chorus 2') so regenerations find the right one."
    end
    seen[s.name] = true
  end
  local sections = {}
  for i, s in ipairs(spans) do sections[i] = section_entry(proj, s.name, s.t0, s.t1) end
  return json.array(sections), spans
end

-- ---------------------------------------------------------------------------------------------
-- Inputs: roles from track names

local ROLE_WORDS = {
  { role = "drums", words = { "drum", "kit", "beat", "perc", "groove" } },
  { role = "chords", words = { "chord", "harmon", "progression", "comp" } },
  { role = "melody", words = { "melod", "hum", "lead", "vocal", "voice", "tune", "topline", "whistle" } },
}

--- "chords", "drums", "melody" from a track name, or nil when the name says nothing.
function R.role_from_track_name(name)
  local lower = (name or ""):lower()
  for _, entry in ipairs(ROLE_WORDS) do
    for _, w in ipairs(entry.words) do
      if lower:find(w, 1, true) then return entry.role end
    end
  end
  return nil
end

local VALID_ROLES = { chords = true, drums = true, melody = true }

--- Role of a track: from its name, else remembered in the project, else asked once.
function R.track_role(track)
  local _, name = reaper.GetSetMediaTrackInfo_String(track, "P_NAME", "", false)
  local role = R.role_from_track_name(name)
  if role then return role end
  local key = "role:" .. reaper.GetTrackGUID(track)
  role = util.get_state(key)
  if role and VALID_ROLES[role] then return role end
  local label = (name ~= "" and name) or ("track " .. math.floor(reaper.GetMediaTrackInfo_Value(track, "IP_TRACKNUMBER")))
  while true do
    local answers = util.ask("StemBridge: what is on " .. label .. "?", { "Role (chords / drums / melody):" },
      { "chords" }, 80)
    if not answers then return nil end
    local answer = answers[1]
    answer = answer:lower()
    if VALID_ROLES[answer] then
      util.set_state(key, answer)
      return answer
    end
    reaper.ShowMessageBox("Type chords, drums or melody.", "StemBridge", 0)
  end
end

-- ---------------------------------------------------------------------------------------------
-- Inputs: notes and audio

local function item_notes(take, item, notes)
  local pos = reaper.GetMediaItemInfo_Value(item, "D_POSITION")
  local len = reaper.GetMediaItemInfo_Value(item, "D_LENGTH")
  local qn0 = reaper.TimeMap2_timeToQN(0, pos)
  local qn1 = reaper.TimeMap2_timeToQN(0, pos + len)
  local period = nil
  if reaper.GetMediaItemInfo_Value(item, "B_LOOPSRC") >= 1 then
    local src_len, is_qn = reaper.GetMediaSourceLength(reaper.GetMediaItemTake_Source(take))
    if is_qn and src_len > EPS_BEATS then period = src_len end
  end
  local _, notecnt = reaper.MIDI_CountEvts(take)
  for i = 0, notecnt - 1 do
    local ok, _, muted, sppq, eppq, _, pitch, vel = reaper.MIDI_GetNote(take, i)
    if ok and not muted then
      local s = reaper.MIDI_GetProjQNFromPPQPos(take, sppq)
      local e = reaper.MIDI_GetProjQNFromPPQPos(take, eppq)
      local shift = 0
      repeat
        local a, b = s + shift, e + shift
        if a >= qn0 - EPS_BEATS and a < qn1 - EPS_BEATS then
          notes[#notes + 1] = {
            pitch = math.tointeger(pitch),
            start_beat = a,
            end_beat = math.min(b, qn1),
            velocity = math.tointeger(vel),
          }
        end
        shift = shift + (period or 0)
      until not period or s + shift >= qn1 - EPS_BEATS
    end
  end
end

local function copy_into_project(path, project_dir)
  local rel = util.relative_to(path, project_dir)
  if rel then return rel end
  local dest_rel = "stembridge/inputs/" .. util.basename(path)
  local dest = util.join(project_dir, "stembridge", "inputs", util.basename(path))
  if not util.file_exists(dest) then
    util.copy_file(path, dest)
    util.log("Copied " .. path .. " into the project (" .. dest_rel .. ") so the bridge can read it.")
  end
  return dest_rel
end

local function audio_melody(take, item, project_dir)
  local src = reaper.GetMediaItemTake_Source(take)
  local path = reaper.GetMediaSourceFileName(src)
  if not path or path == "" then return nil, "the selected audio item has no source file" end
  local rate = reaper.GetMediaItemTakeInfo_Value(take, "D_PLAYRATE")
  if math.abs(rate - 1) > 1e-6 then
    util.log("Note: the hummed melody item plays at rate " .. rate .. "; StemBridge reads the file at its own speed.")
  end
  return {
    audio = copy_into_project(path, project_dir),
    offset_s = reaper.GetMediaItemInfo_Value(item, "D_POSITION"),
    source_offset_s = math.max(0, reaper.GetMediaItemTakeInfo_Value(take, "D_STARTOFFS")),
    length_s = reaper.GetMediaItemInfo_Value(item, "D_LENGTH") * rate,
  }
end

local function by_start(a, b)
  if a.start_beat ~= b.start_beat then return a.start_beat < b.start_beat end
  return a.pitch < b.pitch
end

--- Inputs from the selected items: {chords=..., drums=..., melody=...}, or nil plus a message.
function R.inputs(proj, project_dir)
  local notes = { chords = {}, drums = {}, melody = {} }
  local melody_audio = nil
  for i = 0, reaper.CountSelectedMediaItems(proj) - 1 do
    local item = reaper.GetSelectedMediaItem(proj, i)
    local take = reaper.GetActiveTake(item)
    if take then
      local track = reaper.GetMediaItem_Track(item)
      local _, track_name = reaper.GetSetMediaTrackInfo_String(track, "P_NAME", "", false)
      if track_name:sub(1, 3) == "SB " then
        -- a stem StemBridge made: never an input
      elseif reaper.TakeIsMIDI(take) then
        local role = R.track_role(track)
        if not role then return nil, "cancelled" end
        item_notes(take, item, notes[role])
      elseif melody_audio then
        util.log("Note: more than one audio item is selected; the first is the hummed melody.")
      else
        local m, err = audio_melody(take, item, project_dir)
        if not m then return nil, err end
        melody_audio = m
      end
    end
  end
  local inputs = {}
  for _, role in ipairs({ "chords", "drums" }) do
    if #notes[role] > 0 then
      table.sort(notes[role], by_start)
      inputs[role] = { notes = json.array(notes[role]) }
    end
  end
  if melody_audio then
    inputs.melody = melody_audio
    if #notes.melody > 0 then util.log("Note: using the hummed audio as the melody, not the MIDI melody.") end
  elseif #notes.melody > 0 then
    table.sort(notes.melody, by_start)
    inputs.melody = { notes = json.array(notes.melody) }
  end
  return json.object(inputs)
end

-- ---------------------------------------------------------------------------------------------
-- Settings remembered in the project

R.DEFAULTS = { prompt = "", stems = "drums,bass,keys,lead", model = "arranger", seed = "1" }

function R.settings()
  return {
    prompt = util.get_state("prompt", R.DEFAULTS.prompt),
    stems = util.get_state("stems", R.DEFAULTS.stems),
    model = util.get_state("model", R.DEFAULTS.model),
    seed = util.get_state("seed", R.DEFAULTS.seed),
  }
end

--- Ask for prompt, stems, model and seed (pre-filled with the project's last values).
function R.ask_settings()
  local s = R.settings()
  local f = util.ask("StemBridge: generate",
    { "Prompt (style and instruments):", "Stems (separated by commas):", "Model:", "Seed:" },
    { s.prompt, s.stems, s.model, s.seed }, 250)
  if not f then return nil end
  local seed = math.tointeger(tonumber(f[4] or ""))
  if not seed or seed < 0 then
    reaper.ShowMessageBox("The seed must be a whole number (0 or more).", "StemBridge", 0)
    return nil
  end
  local out = { prompt = f[1] or "", stems = f[2] or R.DEFAULTS.stems, model = f[3] or "arranger", seed = tostring(seed) }
  for k, v in pairs(out) do util.set_state(k, v) end
  return out
end

--- Build the complete request v1 for a generation. Returns request, spans or nil, message.
function R.build(proj, project_dir, settings)
  local grid, grid_err = R.bar_grid(proj)
  if not grid then return nil, grid_err end
  local sections, spans = R.sections(proj)
  if not sections then return nil, spans end
  local inputs, err = R.inputs(proj, project_dir)
  if not inputs then return nil, err end
  local stems = {}
  for _, s in ipairs(util.split(settings.stems, ",")) do
    if s ~= "" then stems[#stems + 1] = s:lower() end
  end
  local request = {
    version = 1,
    project = {
      dir = project_dir,
      sample_rate = R.sample_rate(proj),
      tempo_map = R.tempo_map(proj),
    },
    sections = sections,
    inputs = inputs,
    prompt = settings.prompt,
    stems = json.array(stems),
    model = settings.model,
    seed = math.tointeger(tonumber(settings.seed)) or 1,
    variations = 1,
  }
  return request, spans
end

return R
