-- @description StemBridge - Generate
-- @about Gather the selected MIDI/audio items, regions and tempo map and send them to the StemBridge bridge.
-- @noindex
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = dir .. "?.lua;" .. package.path
require("stembridge_actions").run("generate")
