# Time-bound exceptions (waivers)
# data.verdict_data.exceptions holds approved waivers. An exception waives the violations of one
# control for the subject and/or resource (and optionally action) it names, while input.now is
# before its expires_at. DEFAULT-DENY and INPUT-001 cannot be waived; an exception naming neither
# subject_id nor resource_id (a blanket waiver) is ignored.
package verdict.exceptions

import data.verdict.lib
import data.verdict.lib.time

# active: exceptions that are approved, unexpired at input.now and scoped to this request.
active contains e if {
	is_array(data.verdict_data.exceptions)
	some e in data.verdict_data.exceptions
	is_object(e)
	lib.non_empty_string(e.id)
	lib.non_empty_string(e.control)
	not e.control in lib.unwaivable
	e.approved == true
	time.ns(e.expires_at) > lib.now
	scoped(e)
	matches(e, "subject_id", input.subject.id)
	matches(e, "resource_id", input.resource.id)
	matches(e, "action", input.action.name)
}

scoped(e) if object.get(e, "subject_id", null) != null

scoped(e) if object.get(e, "resource_id", null) != null

matches(e, key, _) if object.get(e, key, null) == null

matches(e, key, actual) if {
	expected := object.get(e, key, null)
	expected != null
	expected == actual
}

# decide turns raw violations and obligations into the result contract:
#   {"allow", "violations", "obligations", "exceptions"}, arrays sorted deterministically.
decide(raw, obligations) := {
	"allow": count(remaining) == 0,
	"violations": sort_violations(remaining),
	"obligations": sort_obligations(kept),
	"exceptions": sort(applied),
} if {
	waived := {v |
		some v in raw
		not v.control in lib.unwaivable
		some e in active
		e.control == v.control
	}
	remaining := raw - waived
	applied := {e.id |
		some e in active
		some v in waived
		v.control == e.control
	}
	open_controls := {v.control | some v in remaining}
	kept := {o | some o in obligations; o.control in open_controls}
}

violation_key(v) := concat("|", [v.control, v.message, v.severity])

obligation_key(o) := concat("|", [o.control, o.type, o.reason])

# Sorting by a string key (not by object comparison) keeps the order identical in OPA and in wasm.
sort_violations(vs) := [v |
	some k in sort({violation_key(v) | some v in vs})
	some v in vs
	violation_key(v) == k
]

sort_obligations(os) := [o |
	some k in sort({obligation_key(o) | some o in os})
	some o in os
	obligation_key(o) == k
]

# deny_out_of_scope: the result for a request no policy handles.
deny_out_of_scope := decide({lib.default_deny} | lib.envelope_violations, set())
