# Shared helpers for the Verdict control library
package verdict.lib

import data.verdict.lib.time

# Controls that no exception can waive.
unwaivable := {"DEFAULT-DENY", "INPUT-001"}

# The decision time, from the envelope (never time.now_ns(): decisions must replay exactly), in
# nanoseconds: Verdict's server attaches `now_ns` beside `now` (the same instant, trusted server-side
# input like `now` itself), which saves parsing `now` on every decision; without it (OPA, the data
# API, an older server), `now` is parsed.
now := input.now_ns if is_number(input.now_ns)

else := time.ns(input.now)

non_empty_string(x) if {
	is_string(x)
	trim_space(x) != ""
}

# non_empty: a non-blank string, or a non-empty object or array.
non_empty(x) if non_empty_string(x)

non_empty(x) if {
	is_object(x)
	count(x) > 0
}

non_empty(x) if {
	is_array(x)
	count(x) > 0
}

str_or(x, _) := x if is_string(x)

str_or(x, d) := d if not is_string(x)

# norm: case- and whitespace-insensitive form of a string (for identity comparisons).
norm(x) := lower(trim_space(x)) if is_string(x)

default_deny := {
	"control": "DEFAULT-DENY",
	"message": "no policy handles this action and resource type",
	"severity": "high",
}

# present(obj, key): obj has key (with any value, including null or false).
present(obj, key) if {
	is_object(obj)
	_ = obj[key]
}

# get: obj[key], or null when obj is not an object or lacks key. Always defined, so it is safe
# under `not` (a call whose argument is undefined makes a negated expression fail, not succeed).
get(obj, key) := object.get(obj, key, null) if is_object(obj)

get(obj, _) := null if not is_object(obj)

# INPUT-001: the envelope must be well formed. Anything malformed denies and cannot be waived.
envelope_violations contains {
	"control": "INPUT-001",
	"message": "input.now is missing or not an RFC 3339 timestamp",
	"severity": "high",
} if not now

envelope_violations contains {
	"control": "INPUT-001",
	"message": "subject must be an object with string type and id",
	"severity": "high",
} if not valid_subject

envelope_violations contains {
	"control": "INPUT-001",
	"message": "action must be an object with a string name",
	"severity": "high",
} if not valid_action

envelope_violations contains {
	"control": "INPUT-001",
	"message": "resource must be an object with string type and id",
	"severity": "high",
} if not valid_resource

envelope_violations contains {
	"control": "INPUT-001",
	"message": "properties and context, when present, must be objects",
	"severity": "high",
} if {
	some x in [input.subject, input.action, input.resource]
	present(x, "properties")
	not is_object(x.properties)
}

envelope_violations contains {
	"control": "INPUT-001",
	"message": "properties and context, when present, must be objects",
	"severity": "high",
} if {
	present(input, "context")
	not is_object(input.context)
}

valid_subject if {
	is_object(input.subject)
	non_empty_string(input.subject.type)
	non_empty_string(input.subject.id)
}

valid_resource if {
	is_object(input.resource)
	non_empty_string(input.resource.type)
	non_empty_string(input.resource.id)
}

valid_action if {
	is_object(input.action)
	non_empty_string(input.action.name)
}
