-- @description StemBridge - Cancel
-- @about Cancel the running and queued StemBridge jobs of this project.
-- @noindex
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = dir .. "?.lua;" .. package.path
require("stembridge_actions").run("cancel")
