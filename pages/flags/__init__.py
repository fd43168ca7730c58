"""Flag pages: the list with stale flags, one flag across environments, ramps and the kill switch."""
