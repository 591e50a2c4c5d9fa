-- A module the versioned app requires from its own directory.
return { text = "{{GREETING}}" }
