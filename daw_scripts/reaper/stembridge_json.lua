-- stembridge_json.lua: a small JSON encoder/decoder for the StemBridge ReaScripts.
--
-- Written for stembridge (request/manifest v1); plain Lua 5.3/5.4, no C modules.
--   json.encode(value) -> string     (object keys sorted, so output is deterministic)
--   json.decode(text)  -> value      (raises an error with the byte position on bad input)
--   json.array(t)      marks t as a JSON array (needed for empty arrays)
--   json.object(t)     marks t as a JSON object (needed for empty objects)
--   json.null          stands for JSON null inside decoded arrays/objects
-- Integers stay integers (Lua integer subtype <-> JSON number without fraction/exponent).

local json = {}

local ARRAY_MT = { __jsontype = "array" }
local OBJECT_MT = { __jsontype = "object" }

json.null = setmetatable({}, { __tostring = function() return "null" end, __jsontype = "null" })

function json.array(t)
  return setmetatable(t or {}, ARRAY_MT)
end

function json.object(t)
  return setmetatable(t or {}, OBJECT_MT)
end

-- ---------------------------------------------------------------------------------------------
-- Encoding

local ESCAPES = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function encode_number(x)
  if math.type(x) == "integer" then
    return string.format("%d", x)
  end
  if x ~= x or x == math.huge or x == -math.huge then
    error("json: cannot encode " .. tostring(x) .. " (not a finite number)")
  end
  local s = string.format("%.15g", x)
  if tonumber(s) ~= x then s = string.format("%.17g", x) end
  if not s:find("[%.eEn]") then s = s .. ".0" end -- keep floats floats on the other side
  return s
end

local function kind_of(t)
  local mt = getmetatable(t)
  if mt and mt.__jsontype then return mt.__jsontype end
  local n = #t
  if n > 0 then
    local count = 0
    for _ in pairs(t) do count = count + 1 end
    if count == n then return "array" end
    return "object"
  end
  if next(t) == nil then return "object" end
  return "object"
end

local encode_value

local function encode_table(t, seen)
  if seen[t] then error("json: cannot encode a table that contains itself") end
  seen[t] = true
  local kind = kind_of(t)
  local out = {}
  if kind == "null" then
    seen[t] = nil
    return "null"
  elseif kind == "array" then
    for i = 1, #t do out[i] = encode_value(t[i], seen) end
    seen[t] = nil
    return "[" .. table.concat(out, ",") .. "]"
  end
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then
      error("json: object keys must be strings, got " .. type(k) .. " " .. tostring(k))
    end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  for i, k in ipairs(keys) do
    out[i] = encode_string(k) .. ":" .. encode_value(t[k], seen)
  end
  seen[t] = nil
  return "{" .. table.concat(out, ",") .. "}"
end

encode_value = function(v, seen)
  local tv = type(v)
  if tv == "nil" then return "null" end
  if tv == "boolean" then return v and "true" or "false" end
  if tv == "number" then return encode_number(v) end
  if tv == "string" then return encode_string(v) end
  if tv == "table" then return encode_table(v, seen) end
  error("json: cannot encode a value of type " .. tv)
end

function json.encode(value)
  return encode_value(value, {})
end

-- ---------------------------------------------------------------------------------------------
-- Decoding

local function decode_error(text, pos, what)
  local line, col = 1, 1
  for i = 1, math.min(pos - 1, #text) do
    if text:sub(i, i) == "\n" then line, col = line + 1, 1 else col = col + 1 end
  end
  error(string.format("json: %s at line %d, column %d (byte %d)", what, line, col, pos), 0)
end

local function skip_ws(text, pos)
  return text:find("[^ \t\r\n]", pos) or (#text + 1)
end

local function utf8_char(code)
  if utf8 and utf8.char then return utf8.char(code) end
  if code < 0x80 then return string.char(code) end
  if code < 0x800 then
    return string.char(0xC0 | (code >> 6), 0x80 | (code & 0x3F))
  end
  if code < 0x10000 then
    return string.char(0xE0 | (code >> 12), 0x80 | ((code >> 6) & 0x3F), 0x80 | (code & 0x3F))
  end
  return string.char(0xF0 | (code >> 18), 0x80 | ((code >> 12) & 0x3F),
    0x80 | ((code >> 6) & 0x3F), 0x80 | (code & 0x3F))
end

local UNESCAPE = { ['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t' }

local function decode_string(text, pos)
  -- pos is at the opening quote
  local parts = {}
  local i = pos + 1
  while true do
    local j = text:find('["\\%c]', i)
    if not j then decode_error(text, pos, "unterminated string") end
    parts[#parts + 1] = text:sub(i, j - 1)
    local c = text:sub(j, j)
    if c == '"' then
      return table.concat(parts), j + 1
    elseif c == "\\" then
      local e = text:sub(j + 1, j + 1)
      if e == "u" then
        local hex = text:sub(j + 2, j + 5)
        if not hex:match("^%x%x%x%x$") then decode_error(text, j, "bad \\u escape") end
        local code = tonumber(hex, 16)
        local nxt = j + 6
        if code >= 0xD800 and code <= 0xDBFF then
          local lo = text:match("^\\u(%x%x%x%x)", nxt)
          local low = lo and tonumber(lo, 16)
          if low and low >= 0xDC00 and low <= 0xDFFF then
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            nxt = nxt + 6
          end
        end
        parts[#parts + 1] = utf8_char(code)
        i = nxt
      elseif UNESCAPE[e] then
        parts[#parts + 1] = UNESCAPE[e]
        i = j + 2
      else
        decode_error(text, j, "bad escape \\" .. e)
      end
    else
      decode_error(text, j, "control character in string")
    end
  end
end

local decode_value

local function decode_number(text, pos)
  local s = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  if not s or s == "" or s == "-" then decode_error(text, pos, "bad number") end
  local value
  if s:find("[%.eE]") then
    value = tonumber(s)
  else
    value = math.tointeger(tonumber(s)) or tonumber(s)
  end
  if value == nil then decode_error(text, pos, "bad number '" .. s .. "'") end
  return value, pos + #s
end

local function decode_array(text, pos)
  local result = json.array({})
  local n = 0
  pos = skip_ws(text, pos + 1)
  if text:sub(pos, pos) == "]" then return result, pos + 1 end
  while true do
    local v
    v, pos = decode_value(text, pos)
    n = n + 1
    result[n] = v
    pos = skip_ws(text, pos)
    local c = text:sub(pos, pos)
    if c == "]" then return result, pos + 1 end
    if c ~= "," then decode_error(text, pos, "expected ',' or ']' in array") end
    pos = skip_ws(text, pos + 1)
  end
end

local function decode_object(text, pos)
  local result = json.object({})
  pos = skip_ws(text, pos + 1)
  if text:sub(pos, pos) == "}" then return result, pos + 1 end
  while true do
    if text:sub(pos, pos) ~= '"' then decode_error(text, pos, "expected a key string") end
    local key
    key, pos = decode_string(text, pos)
    pos = skip_ws(text, pos)
    if text:sub(pos, pos) ~= ":" then decode_error(text, pos, "expected ':' after key") end
    local v
    v, pos = decode_value(text, skip_ws(text, pos + 1))
    result[key] = v
    pos = skip_ws(text, pos)
    local c = text:sub(pos, pos)
    if c == "}" then return result, pos + 1 end
    if c ~= "," then decode_error(text, pos, "expected ',' or '}' in object") end
    pos = skip_ws(text, pos + 1)
  end
end

decode_value = function(text, pos)
  pos = skip_ws(text, pos)
  local c = text:sub(pos, pos)
  if c == "{" then return decode_object(text, pos) end
  if c == "[" then return decode_array(text, pos) end
  if c == '"' then return decode_string(text, pos) end
  if c == "-" or c:match("%d") then return decode_number(text, pos) end
  if text:sub(pos, pos + 3) == "true" then return true, pos + 4 end
  if text:sub(pos, pos + 4) == "false" then return false, pos + 5 end
  if text:sub(pos, pos + 3) == "null" then return json.null, pos + 4 end
  if c == "" then decode_error(text, pos, "unexpected end of text") end
  decode_error(text, pos, "unexpected character '" .. c .. "'")
end

function json.decode(text)
  if type(text) ~= "string" then error("json: decode expects a string, got " .. type(text)) end
  if text:sub(1, 3) == "\239\187\191" then text = text:sub(4) end -- UTF-8 byte order mark
  local value, pos = decode_value(text, 1)
  pos = skip_ws(text, pos)
  if pos <= #text then decode_error(text, pos, "trailing characters after the JSON value") end
  return value
end

--- Value at t[k], with json.null read as nil.
function json.get(t, k)
  if type(t) ~= "table" then return nil end
  local v = t[k]
  if v == json.null then return nil end
  return v
end

return json
