-- @description StemBridge - Regenerate selection
-- @about Regenerate the bars of the time selection as a new take of their section.
-- @noindex
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = dir .. "?.lua;" .. package.path
require("stembridge_actions").run("regenerate")
