"""The piano roll: pure geometry, tools as objects, and the Qt widgets that paint and edit notes."""
