-- A module the versioned app requires from a subdirectory (lib/suffix.lua).
return { text = "{{SUFFIX}}" }
