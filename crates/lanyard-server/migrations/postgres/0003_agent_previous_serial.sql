-- The serial of the agent SVID a renewal replaced: accepted until the agent first
-- presents the new one (so a lost renewal response does not lock the agent out), then
-- cleared. Empty when there is none.
ALTER TABLE agents ADD COLUMN previous_svid_serial TEXT NOT NULL DEFAULT '';
