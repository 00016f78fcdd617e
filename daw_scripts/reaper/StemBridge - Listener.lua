-- @description StemBridge - Listener (toggle)
-- @about Background listener: imports finished stems onto "SB ..." tracks (new takes on
--   regeneration) and shows the bridge's queue and progress. Run again, or close its window, to stop.
-- @noindex
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = dir .. "?.lua;" .. package.path
require("stembridge_listener").start()
