-- stembridge_util.lua: paths, files, the file mailbox and project state for the StemBridge scripts.
--
-- The bridge reads requests from <project>/stembridge/inbox/ and writes manifests and status.json
-- to <project>/stembridge/outbox/ (see daw_scripts/README.md, "Mailbox contract").
-- Every file we hand to the bridge is written as <name>.json.tmp and then renamed to <name>.json,
-- so the bridge never reads half a file.

local json = require("stembridge_json")

local util = {}

util.EXT = "StemBridge" -- project extended-state section
util.SEP = package.config:sub(1, 1) -- "\\" on Windows, "/" elsewhere
util.VERSION = "0.1.0"

-- ---------------------------------------------------------------------------------------------
-- Messages

--- Write a line to REAPER's console (View > ReaScript console output).
function util.log(msg)
  reaper.ShowConsoleMsg("[StemBridge] " .. tostring(msg) .. "\n")
end

--- Show an error the musician must act on: console line plus a message box.
function util.fail(msg)
  util.log("Error: " .. msg)
  reaper.ShowMessageBox(msg, "StemBridge", 0)
end

-- ---------------------------------------------------------------------------------------------
-- Paths and files

function util.join(...)
  local parts = { ... }
  local out = parts[1]
  for i = 2, #parts do
    if out:sub(-1) == "/" or out:sub(-1) == "\\" then
      out = out .. parts[i]
    else
      out = out .. util.SEP .. parts[i]
    end
  end
  return out
end

function util.dirname(path)
  return path:match("^(.*)[/\\][^/\\]*$") or ""
end

function util.basename(path)
  return path:match("([^/\\]+)$") or path
end

--- Normalise separators to "/" (for comparisons and manifest paths).
function util.slash(path)
  return (path:gsub("\\", "/"))
end

function util.file_exists(path)
  local fh = io.open(path, "rb")
  if fh then fh:close() return true end
  return false
end

function util.read_file(path)
  local fh = io.open(path, "rb")
  if not fh then return nil end
  local data = fh:read("a")
  fh:close()
  return data
end

function util.mkdir(path)
  reaper.RecursiveCreateDirectory(path, 0)
end

--- Write text to path through path..".tmp" and a rename; raises on failure.
function util.write_atomic(path, text)
  util.mkdir(util.dirname(path))
  local tmp = path .. ".tmp"
  local fh, err = io.open(tmp, "wb")
  if not fh then error("cannot write " .. tmp .. ": " .. tostring(err), 0) end
  fh:write(text)
  fh:close()
  local ok, rerr = os.rename(tmp, path)
  if not ok then
    os.remove(tmp)
    error("cannot rename " .. tmp .. " to " .. path .. ": " .. tostring(rerr), 0)
  end
  return path
end

function util.copy_file(src, dst)
  local data = util.read_file(src)
  if not data then error("cannot read " .. src, 0) end
  util.write_atomic(dst, data)
end

--- Read and decode a JSON file; returns value or nil, error message.
function util.read_json(path)
  local text = util.read_file(path)
  if not text then return nil, "cannot read " .. path end
  local ok, value = pcall(json.decode, text)
  if not ok then return nil, tostring(value) end
  return value
end

--- List file names (not paths) in a folder, sorted.
function util.list_files(dir)
  local names = {}
  local i = 0
  while true do
    local name = reaper.EnumerateFiles(dir, i)
    if not name or name == "" then break end
    names[#names + 1] = name
    i = i + 1
  end
  table.sort(names)
  return names
end

-- ---------------------------------------------------------------------------------------------
-- Project

--- The folder of the current project's .rpp file, or nil when the project was never saved.
function util.project_dir()
  local _, projfn = reaper.EnumProjects(-1)
  if projfn and projfn ~= "" then
    return util.dirname(projfn)
  end
  return nil
end

--- Like project_dir, but shows the musician what to do when the project is unsaved.
function util.require_project_dir()
  local dir = util.project_dir()
  if not dir then
    util.fail("Save the project first: StemBridge keeps requests and stems in a 'stembridge' "
      .. "folder beside the .rpp file.")
  end
  return dir
end

function util.mailbox(project_dir)
  local root = util.join(project_dir, "stembridge")
  return {
    root = root,
    inbox = util.join(root, "inbox"),
    outbox = util.join(root, "outbox"),
    failed = util.join(root, "inbox", "failed"),
    requests = util.join(root, "daw"),
  }
end

--- Path of `path` relative to `base` with "/" separators, or nil if it is not inside base.
function util.relative_to(path, base)
  local p, b = util.slash(path), util.slash(base)
  if b:sub(-1) ~= "/" then b = b .. "/" end
  local cmp_p, cmp_b = p, b
  if util.SEP == "\\" then cmp_p, cmp_b = p:lower(), b:lower() end
  if cmp_p:sub(1, #cmp_b) == cmp_b then return p:sub(#b + 1) end
  return nil
end

-- ---------------------------------------------------------------------------------------------
-- Project extended state (saved inside the .rpp)

function util.get_state(key, default)
  local ok, value = reaper.GetProjExtState(0, util.EXT, key)
  if ok and ok ~= 0 and value ~= "" then return value end
  return default
end

function util.set_state(key, value)
  reaper.SetProjExtState(0, util.EXT, key, tostring(value))
end

-- ---------------------------------------------------------------------------------------------
-- Mailbox

local random_seeded = false

--- A unique, sortable name such as "reaper-20260114-101500-3fa2c1".
function util.unique_name(prefix)
  if not random_seeded then
    math.randomseed(os.time(), math.floor((reaper.time_precise() % 1) * 1e6))
    random_seeded = true
  end
  return string.format("%s-%s-%06x", prefix, os.date("!%Y%m%d-%H%M%S"), math.random(0, 0xFFFFFF))
end

--- Drop a request or control document into the inbox; returns the .json path.
function util.post(project_dir, doc, prefix)
  local box = util.mailbox(project_dir)
  local name = util.unique_name(prefix or "reaper")
  local path = util.join(box.inbox, name .. ".json")
  util.write_atomic(path, json.encode(doc))
  return path, name
end

--- Ints stay ints in JSON: a float with no fraction becomes a Lua integer.
function util.int_if_whole(x, tolerance)
  tolerance = tolerance or 1e-9
  local r = math.floor(x + 0.5)
  if math.abs(x - r) <= tolerance then return math.tointeger(r) end
  return x
end

--- Ask for values in one REAPER dialog; returns the list of answers, or nil when cancelled.
-- REAPER splits the captions on commas whatever separator= says (that option only applies to
-- the values), so a caption must not contain a comma: it would label the wrong boxes.
-- The values are separated by newlines so that they may contain commas.
function util.ask(title, captions, defaults, extrawidth)
  for _, c in ipairs(captions) do
    if c:find(",", 1, true) then error("dialog caption '" .. c .. "' contains a comma", 2) end
  end
  for _, d in ipairs(defaults) do
    if tostring(d):find("\n", 1, true) then error("dialog value contains a line break", 2) end
  end
  local csv = table.concat(captions, ",") .. ",separator=\n"
  if extrawidth then csv = csv .. ",extrawidth=" .. math.floor(extrawidth) end
  local ok, answer = reaper.GetUserInputs(title, #captions, csv, table.concat(defaults, "\n"))
  if not ok then return nil end
  local out = {}
  for i = 1, #captions do out[i] = "" end
  local i = 1
  for piece in (answer .. "\n"):gmatch("(.-)\n") do
    if i <= #captions then out[i] = util.trim(piece) end
    i = i + 1
  end
  return out
end

function util.trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

function util.split(s, sep)
  local out = {}
  for piece in (s .. sep):gmatch("(.-)" .. sep:gsub("%p", "%%%0")) do
    out[#out + 1] = util.trim(piece)
  end
  return out
end

return util
