-- @description StemBridge - Variation
-- @about Ask the bridge for a variation (new seed, new take) of the section under the edit cursor.
-- @noindex
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = dir .. "?.lua;" .. package.path
require("stembridge_actions").run("variation")
